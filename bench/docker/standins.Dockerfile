# Stand-ins for the official postgres and haproxy images, built from Debian packages on the local
# base image, for machines that can reach an apt mirror but no container registry. Used only by
# bench/docker_smoke.sh to run compose.yaml for real; production uses the official images.
#
#   docker build --network host -f bench/docker/standins.Dockerfile --target postgres -t greenlight-standin/postgres:15 bench/docker
#   docker build --network host -f bench/docker/standins.Dockerfile --target haproxy  -t greenlight-standin/haproxy:2.6 bench/docker
ARG BASE_IMAGE=greenlight-base:bookworm

# Behaves like the official image for what compose.yaml uses: POSTGRES_USER/PASSWORD/DB on first
# start, data in /var/lib/postgresql/data, pg_isready, listening on 5432 with password auth.
FROM ${BASE_IMAGE} AS postgres
RUN mkdir -p /etc/postgresql-common \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
    && apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/bin/sh", "/usr/local/bin/postgres-entrypoint.sh"]

# Behaves like the official image: config at /usr/local/etc/haproxy/haproxy.cfg, runs as haproxy.
FROM ${BASE_IMAGE} AS haproxy
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /usr/local/etc/haproxy
USER haproxy
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
