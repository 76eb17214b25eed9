# Greenlight container image.
#
#   docker build -t greenlight .
#   docker run --env-file .env -p 3000:3000 -v greenlight-data:/data greenlight
#
# BASE_IMAGE is any Debian-based image with Python 3.11 as `python3` and the venv module. The
# default is the official image; on a machine that can reach no registry, build one from Debian
# packages with scripts/build-base-image.sh and pass --build-arg BASE_IMAGE=greenlight-base:bookworm.
# Plain Dockerfile syntax on purpose (no BuildKit-only features, no `# syntax=` line that would
# fetch a frontend image), so the classic builder and offline BuildKit both build it.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- builder: a virtual environment at /opt/venv with the project and its dependencies ----------
FROM ${BASE_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from pyproject.toml alone, so editing the code reuses this layer. Every
# dependency ships binary wheels (psycopg[binary] included), so no compiler is needed here either;
# a dependency without a wheel for this platform would need build-essential in this stage only.
COPY pyproject.toml ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --require-virtualenv -r /tmp/requirements.txt
COPY README.md ./
COPY bot ./bot
# The runtime needs neither pip nor setuptools (about 25 MB): the image is rebuilt, never upgraded
# in place.
RUN pip install --require-virtualenv --no-deps . \
    && greenlight --help >/dev/null \
    && pip uninstall --yes --quiet setuptools pip

# ---- runtime: the base image + the venv, as a non-root user -------------------------------------
FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GREENLIGHT_HEALTHCHECK_PATH=/readyz
RUN groupadd --gid 10001 greenlight \
    && useradd --uid 10001 --gid greenlight --home-dir /data --no-create-home --no-log-init \
        --shell /usr/sbin/nologin greenlight \
    && mkdir -p /data \
    && chown greenlight:greenlight /data
COPY --from=builder /opt/venv /opt/venv
# The working directory is the data directory: with the default DATABASE_URL
# (sqlite:///greenlight.db) a single container keeps its database in the /data volume. With
# PostgreSQL nothing is written there. A .env file is read from here too, but --env-file/env_file
# is the usual way to pass settings.
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 3000
# Readiness by default (GREENLIGHT_HEALTHCHECK_PATH=/healthz or /livez to change it); stdlib only,
# no curl in the image. Any answer but 2xx, or none within the timeout, counts as unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s%s' % (os.environ.get('PORT') or '3000', os.environ.get('GREENLIGHT_HEALTHCHECK_PATH') or '/readyz'), timeout=4)"]
# uvicorn stops on SIGTERM: finishes requests in flight, then the workers stop (jobs stay leased).
STOPSIGNAL SIGTERM
CMD ["greenlight"]
