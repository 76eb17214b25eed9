#!/usr/bin/env bash
# End-to-end check of the Docker deployment on this machine: base image, image build, a container
# answering /healthz (and /readyz when the build has it) as a non-root user, `greenlight migrate`
# against the host's PostgreSQL from a container, and compose.yaml validated and, when stand-in
# images can be built, run for real (PostgreSQL, migrate, two replicas, HAProxy on one port).
#
#   bash bench/docker_smoke.sh            # ~2-4 minutes when the images are cached, more at first
#
# Takes minutes, so CI does not run it; tests/test_docker_smoke.py runs it when
# GREENLIGHT_DOCKER_TESTS=1. It leaves no container, volume, network or database behind (images stay
# as a build cache). Prints one line per check and ends with "N passed, N failed".
#
# Needs: the docker CLI and an engine; if none answers and this is root with dockerd installed
# (apt-get install docker.io), it starts one for the run with the flags that work in this sandbox
# and stops it at the end. debootstrap for the local base image. psql + PostgreSQL on 127.0.0.1
# for the migrate check (skipped otherwise). docker compose or docker-compose for the compose checks.
#
# Settings (environment):
#   SMOKE_BASE_IMAGE  base for the build (default greenlight-base:bookworm, built here by
#                     scripts/build-base-image.sh; python:3.11-slim-bookworm where it can be pulled)
#   SMOKE_IMAGE       tag of the image built here (default greenlight:smoke)
#   SMOKE_PG_ADMIN    libpq URL to create/drop the scratch database
#                     (default postgresql://postgres@127.0.0.1:5432/postgres)
#   SMOKE_COMPOSE_UP  1 (default): run compose.yaml for real with stand-in images; 0: config only
#   SMOKE_BUILD_NETWORK  network for RUN steps of builds (default host: the bridge is off here)
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

BASE_IMAGE="${SMOKE_BASE_IMAGE:-greenlight-base:bookworm}"
IMAGE="${SMOKE_IMAGE:-greenlight:smoke}"
PG_ADMIN="${SMOKE_PG_ADMIN:-postgresql://postgres@127.0.0.1:5432/postgres}"
COMPOSE_UP="${SMOKE_COMPOSE_UP:-1}"
BUILD_NETWORK="${SMOKE_BUILD_NETWORK:-host}"
RUN_ID="glsmoke$$"
WORK=$(mktemp -d "/tmp/greenlight-docker-smoke.XXXXXX")
PASSED=0
FAILED=0
DOCKERD_PID=""
FAKE_SLACK_PID=""
VOLUMES_BEFORE=""
SCRATCH_DB=""
COMPOSE=()
COMPOSE_DIR="$WORK/compose"

say() { printf '%s\n' "$*"; }
ok() { PASSED=$((PASSED + 1)); say "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); say "FAIL: $*"; }
skip() { say "skip: $*"; }
check() {  # check "description" command...
    local what="$1"; shift
    if "$@" >"$WORK/last.log" 2>&1; then ok "$what"; return 0; fi
    fail "$what"; sed 's/^/    /' "$WORK/last.log" | tail -n 25; return 1
}
finish() {
    teardown
    if [[ -n "$VOLUMES_BEFORE" ]] && docker info >/dev/null 2>&1; then
        left=$(docker ps -aq --filter "label=greenlight-smoke=$RUN_ID"; \
               comm -13 "$VOLUMES_BEFORE" <(docker volume ls -q | sort))
        check "no container or volume left behind" test -z "$left"
    fi
    say "$PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
    exit $?
}
abort() { fail "$*"; finish; }

# Containers, volumes and networks of this run, the scratch database and the fake Slack.
teardown() {
    if [[ ${#COMPOSE[@]} -gt 0 && -d "$COMPOSE_DIR" ]]; then
        (cd "$COMPOSE_DIR" && "${COMPOSE[@]}" -p "$RUN_ID" -f compose.yaml -f compose.smoke.yaml \
            down -v --remove-orphans --timeout 10 >/dev/null 2>&1)
    fi
    if docker info >/dev/null 2>&1; then
        ids=$(docker ps -aq --filter "label=greenlight-smoke=$RUN_ID")
        [[ -n "$ids" ]] && docker rm -fv $ids >/dev/null 2>&1
        vols=$(docker volume ls -q --filter "label=greenlight-smoke=$RUN_ID")
        [[ -n "$vols" ]] && docker volume rm $vols >/dev/null 2>&1
    fi
    if [[ -n "$SCRATCH_DB" ]]; then
        psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $SCRATCH_DB WITH (FORCE)" >/dev/null 2>&1
        SCRATCH_DB=""
    fi
    [[ -n "$FAKE_SLACK_PID" ]] && kill "$FAKE_SLACK_PID" 2>/dev/null
    COMPOSE=()
    FAKE_SLACK_PID=""
    return 0
}
cleanup() {
    set +e
    teardown
    if [[ -n "$DOCKERD_PID" ]]; then
        kill "$DOCKERD_PID" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http_code() { curl -s -o "$WORK/body" -w '%{http_code}' --max-time 5 "$1" 2>/dev/null || true; }
wait_http_200() {  # wait_http_200 URL SECONDS
    local deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        [[ "$(http_code "$1")" == 200 ]] && return 0
        sleep 0.5
    done
    return 1
}
wait_health() {  # wait_health CONTAINER SECONDS -> docker's own HEALTHCHECK status "healthy"
    local deadline=$((SECONDS + $2)) status
    while ((SECONDS < deadline)); do
        status=$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null)
        [[ "$status" == healthy ]] && return 0
        sleep 1
    done
    docker inspect -f '{{json .State.Health}}' "$1"
    return 1
}

# ---- engine ---------------------------------------------------------------------------------------
command -v docker >/dev/null || abort "docker CLI not installed (apt-get install docker.io)"
command -v curl >/dev/null || abort "curl not installed"
if ! docker info >/dev/null 2>&1; then
    command -v dockerd >/dev/null && [[ $(id -u) -eq 0 ]] \
        || abort "no Docker engine answers, and none can be started here (needs root and dockerd)"
    # This sandbox: no default bridge, and dockerd must not touch iptables or IP forwarding.
    # Containers use the host network; compose's own network still works (container to container).
    dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
        >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { tail -n 20 "$WORK/dockerd.log"; abort "dockerd did not start"; }
    ok "started dockerd (pid $DOCKERD_PID) with --bridge=none --iptables=false --ip-forward=false --ip-masq=false"
else
    ok "a Docker engine answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
fi

VOLUMES_BEFORE="$WORK/volumes-before"
docker volume ls -q | sort >"$VOLUMES_BEFORE"

# ---- images ---------------------------------------------------------------------------------------
if [[ "$BASE_IMAGE" == greenlight-base:* ]]; then
    check "base image $BASE_IMAGE (scripts/build-base-image.sh)" \
        env BASE_TAG="$BASE_IMAGE" bash scripts/build-base-image.sh || finish
elif ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    check "pull $BASE_IMAGE" docker pull "$BASE_IMAGE" || finish
fi
build_started=$SECONDS
check "docker build (BASE_IMAGE=$BASE_IMAGE) -> $IMAGE" \
    docker build --rm --force-rm --network "$BUILD_NETWORK" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -t "$IMAGE" . || finish
say "    build took $((SECONDS - build_started)) s; image size $(docker image ls --format '{{.Size}}' "$IMAGE" | head -1)"

check "image runs as uid 10001, not root" \
    test "$(docker image inspect -f '{{.Config.User}}' "$IMAGE")" = "10001:10001"
check "image HEALTHCHECK uses the readiness route by default" \
    sh -c "docker image inspect -f '{{json .Config.Healthcheck.Test}} {{json .Config.Env}}' '$IMAGE' \
           | grep -q 'GREENLIGHT_HEALTHCHECK_PATH=/readyz'"
check "image exposes 3000 and runs greenlight" \
    sh -c "docker image inspect -f '{{json .Config.ExposedPorts}} {{json .Config.Cmd}}' '$IMAGE' \
           | grep -q '\"3000/tcp\".*\\[\"greenlight\"\\]'"
check "no compiler or build tool in the final image" \
    docker run --rm --network none --label "greenlight-smoke=$RUN_ID" --entrypoint sh "$IMAGE" -c \
    'for t in gcc cc c++ g++ clang make ld as pip; do if command -v $t; then exit 1; fi; done; exit 0'

# ---- one container, SQLite in the /data volume ----------------------------------------------------
cat >"$WORK/app.env" <<'EOF'
SLACK_BOT_TOKEN=xoxb-0000-smoke
SLACK_SIGNING_SECRET=smoke-signing-secret
SLACK_CHANNEL_ID=C0SMOKE0000
CHOPPITY_API_KEY=smoke-key-team
CHOPPITY_WEBHOOK_SECRET=smoke-webhook-secret
EOF
SLACK_PORT=$(free_port)
python3 bench/docker/fake_slack.py "$SLACK_PORT" 127.0.0.1 &
FAKE_SLACK_PID=$!
APP_PORT=$(free_port)
APP="$RUN_ID-sqlite"
docker volume create --label "greenlight-smoke=$RUN_ID" "$APP-data" >/dev/null
run_app() {  # run_app NAME PORT PROBE_PATH [docker run args...]
    local name=$1 port=$2 probe=$3; shift 3
    docker run -d --name "$name" --label "greenlight-smoke=$RUN_ID" --network host \
        --env-file "$WORK/app.env" -e "PORT=$port" -e "SLACK_API_URL=http://127.0.0.1:$SLACK_PORT/api/" \
        -e "GREENLIGHT_HEALTHCHECK_PATH=$probe" --health-interval 2s --health-start-period 60s "$@" "$IMAGE"
}
check "container starts (SQLite, host network, port $APP_PORT)" \
    run_app "$APP" "$APP_PORT" /healthz -v "$APP-data:/data" || finish
if wait_http_200 "http://127.0.0.1:$APP_PORT/healthz" 60; then
    ok "GET /healthz answers 200: $(cat "$WORK/body")"
else
    fail "GET /healthz did not answer 200 within 60 s"; docker logs --tail 30 "$APP"; finish
fi
READY_PATH=/healthz
for route in /livez /readyz; do
    code=$(http_code "http://127.0.0.1:$APP_PORT$route")
    case "$code" in
        200) ok "GET $route answers 200: $(head -c 300 "$WORK/body")"; [[ $route == /readyz ]] && READY_PATH=/readyz ;;
        404) skip "GET $route: 404, not in this build yet" ;;
        *) fail "GET $route answered $code: $(head -c 300 "$WORK/body")" ;;
    esac
done
# (re)start with the probe path just found, so docker's own HEALTHCHECK command is what is tested
docker rm -fv "$APP" >/dev/null 2>&1
run_app "$APP" "$APP_PORT" "$READY_PATH" -v "$APP-data:/data" >/dev/null
check "docker HEALTHCHECK (the image's command, path $READY_PATH) reports healthy" wait_health "$APP" 90
check "the server process runs as uid 10001" \
    sh -c "docker top '$APP' -eo pid,uid,args | awk 'NR > 1 && /greenlight/ { found = 1; if (\$2 != 10001) exit 1 } END { exit !found }'"
check "exec in the container is uid 10001 (greenlight), not root" \
    test "$(docker exec "$APP" id -u):$(docker exec "$APP" id -un)" = "10001:greenlight"
check "docker stop: graceful exit 0" \
    sh -c "docker stop -t 20 '$APP' >/dev/null && test \"\$(docker inspect -f '{{.State.ExitCode}}' '$APP')\" = 0"
check "SQLite database kept in the /data volume" \
    docker run --rm --network none --label "greenlight-smoke=$RUN_ID" -v "$APP-data:/data" \
    --entrypoint test "$IMAGE" -s /data/greenlight.db
docker rm -fv "$APP" >/dev/null 2>&1

# ---- greenlight migrate against the host's PostgreSQL ---------------------------------------------
if command -v psql >/dev/null && psql "$PG_ADMIN" -qAtc 'select 1' >/dev/null 2>&1; then
    SCRATCH_DB="greenlight_smoke_$$"
    psql "$PG_ADMIN" -qc "CREATE DATABASE $SCRATCH_DB" >/dev/null
    DB_URL="${PG_ADMIN%/*}/$SCRATCH_DB"
    migrate() {
        docker run --rm --network host --label "greenlight-smoke=$RUN_ID" --env-file "$WORK/app.env" \
            -e "DATABASE_URL=$DB_URL" "$IMAGE" greenlight migrate
    }
    check "greenlight migrate (container -> host PostgreSQL)" migrate
    head=$(psql "${PG_ADMIN%/*}/$SCRATCH_DB" -qAtc 'select version_num from alembic_version' 2>/dev/null)
    latest=$(sed -n 's/^revision[: a-z]*= *"\([^"]*\)".*/\1/p' bot/migrations/versions/*.py | sort | tail -1)
    check "alembic_version is the latest revision ($head)" test -n "$head" -a "$head" = "$latest"
    check "greenlight migrate again is a no-op" migrate
    PG_PORT=$(free_port)
    run_app "$RUN_ID-pg" "$PG_PORT" /healthz -e "DATABASE_URL=$DB_URL" -e AUTO_MIGRATE=false >/dev/null
    if wait_http_200 "http://127.0.0.1:$PG_PORT/healthz" 60; then
        ok "container on PostgreSQL with AUTO_MIGRATE=false: /healthz 200: $(cat "$WORK/body")"
    else
        fail "container on PostgreSQL: /healthz not 200"; docker logs --tail 30 "$RUN_ID-pg"
    fi
    docker rm -fv "$RUN_ID-pg" >/dev/null 2>&1
else
    skip "no PostgreSQL at $PG_ADMIN (or no psql): migrate check not run"
fi

# ---- compose.yaml ---------------------------------------------------------------------------------
if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
fi
if [[ ${#COMPOSE[@]} -eq 0 ]]; then
    skip "neither 'docker compose' nor docker-compose installed: compose.yaml not checked"
    finish
fi
# A copy of the project's compose files with a scratch .env: the real .env is never touched.
mkdir -p "$COMPOSE_DIR"
cp -r compose.yaml deploy bench/docker/compose.smoke.yaml bench/docker/fake_slack.py "$COMPOSE_DIR/"
PROXY_PORT=$(free_port)
{
    cat "$WORK/app.env"
    echo "POSTGRES_PASSWORD=smoke$$"
    echo "GREENLIGHT_PORT=$PROXY_PORT"
    echo "GREENLIGHT_IMAGE=$IMAGE"
    echo "BASE_IMAGE=$BASE_IMAGE"
    echo "GREENLIGHT_HEALTHCHECK_PATH=$READY_PATH"
    echo "POSTGRES_IMAGE=${SMOKE_POSTGRES_IMAGE:-greenlight-standin/postgres:15}"
    echo "HAPROXY_IMAGE=${SMOKE_HAPROXY_IMAGE:-greenlight-standin/haproxy:2.6}"
} >"$COMPOSE_DIR/.env"
cd "$COMPOSE_DIR"
compose() { "${COMPOSE[@]}" -p "$RUN_ID" -f compose.yaml -f compose.smoke.yaml "$@"; }
check "${COMPOSE[*]} config accepts compose.yaml ($("${COMPOSE[@]}" version --short 2>/dev/null))" compose config -q
compose config >"$WORK/config.yaml" 2>/dev/null
check "compose.yaml: 2 replicas, AUTO_MIGRATE=false, postgres healthy -> migrate -> replicas, one published port" \
    python3 - "$WORK/config.yaml" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
assert "replicas: 2" in text, "deploy.replicas: 2"
assert text.count('AUTO_MIGRATE: "false"') >= 2, "AUTO_MIGRATE=false for migrate and greenlight"
assert re.search(r"migrate:\s*\n\s*condition: service_completed_successfully", text), "replicas after migrate"
assert re.search(r"postgres:\s*\n\s*condition: service_healthy", text), "migrate after postgres"
published = re.findall(r"published: ['\"]?\d+", text) + re.findall(r"^\s*- ['\"]?\d+:\d+", text, re.M)
assert len(published) == 1, f"exactly one published port, got {published}"
EOF
if [[ "$COMPOSE_UP" != 1 ]]; then
    skip "SMOKE_COMPOSE_UP=0: compose stack not started"
    finish
fi
# The official postgres and haproxy images cannot be pulled here: Debian-package stand-ins.
for target in postgres haproxy; do
    tag=$(grep "^$(echo "$target" | tr a-z A-Z)_IMAGE=" "$COMPOSE_DIR/.env" | cut -d= -f2)
    if [[ "$tag" == greenlight-standin/* ]]; then
        check "stand-in image $tag (Debian packages on $BASE_IMAGE)" \
            docker build --rm --force-rm -q --network "$BUILD_NETWORK" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
            -f "$ROOT/bench/docker/standins.Dockerfile" --target "$target" -t "$tag" "$ROOT/bench/docker" || finish
    fi
done
check "haproxy accepts deploy/haproxy.cfg" \
    docker run --rm --network none --label "greenlight-smoke=$RUN_ID" -e GREENLIGHT_HEALTHCHECK_PATH=/readyz \
    -v "$COMPOSE_DIR/deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" \
    "$(grep '^HAPROXY_IMAGE=' .env | cut -d= -f2)" haproxy -c -f /usr/local/etc/haproxy/haproxy.cfg
check "compose up -d (postgres, migrate, 2 x greenlight, proxy)" compose up -d --no-build || finish
if wait_http_200 "http://127.0.0.1:$PROXY_PORT$READY_PATH" 120; then
    ok "proxy on port $PROXY_PORT: GET $READY_PATH 200"
else
    fail "proxy on port $PROXY_PORT did not answer 200 on $READY_PATH"; compose ps; compose logs --tail 20
fi
check "migrate ran once and exited 0" \
    test "$(docker inspect -f '{{.State.ExitCode}}' "$(compose ps -q migrate)")" = 0
check "two greenlight replicas running" test "$(compose ps -q greenlight | wc -l)" -eq 2
for c in $(compose ps -q greenlight); do
    wait_health "$c" 90 >/dev/null
done
check "both replicas healthy by the image's HEALTHCHECK" \
    sh -c "for c in $(compose ps -q greenlight | tr '\n' ' '); do test \"\$(docker inspect -f '{{.State.Health.Status}}' \$c)\" = healthy || exit 1; done"
codes=""
for _ in $(seq 1 10); do codes+="$(http_code "http://127.0.0.1:$PROXY_PORT/healthz") "; done
check "10 requests through the proxy all 200" test "$codes" = "$(printf '200 %.0s' $(seq 1 10))"
served_by() { compose logs proxy 2>/dev/null | grep -o 'greenlight/replica[0-9]* [0-9/]* 200' | cut -d' ' -f1 | sort -u | wc -l; }
deadline=$((SECONDS + 30))  # HAProxy may not have passed its first check of the second replica yet
while (( $(served_by) < 2 && SECONDS < deadline )); do http_code "http://127.0.0.1:$PROXY_PORT/healthz" >/dev/null; sleep 0.5; done
check "the proxy spread requests over both replicas ($(served_by) replicas answered)" test "$(served_by)" -ge 2
check "compose down -v" compose down -v --remove-orphans --timeout 20
finish
