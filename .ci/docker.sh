#!/usr/bin/env bash
# Build the Docker image and check it for real: run a container, wait for /healthz and
# /readyz, ask one question over the API. Run as root from anywhere in the repository.
#
# These machines have a Docker client but no engine and no image registry, so when needed this
# installs docker.io and debootstrap, starts dockerd, and makes debian:bookworm-slim from
# Debian's own packages (the Dockerfile's FROM then resolves locally; elsewhere it is pulled).
#
# Exit codes: 0 ok, 3 no Docker engine could be started (callers may skip), others: a failure.
set -euo pipefail

cd "$(dirname "$0")/.."
IMAGE="${IMAGE:-llm-atlas:ci}"
NAME="${CONTAINER_NAME:-llm-atlas-ci}"
PORT="${PORT:-18000}"
WORK="${DOCKER_WORK:-/tmp/llm-atlas-docker}"
PYTHON="${PYTHON:-python3}"
KEY="ci-$RANDOM$RANDOM"
QUESTION="${QUESTION:-What is the context length of Llama 2?}"
mkdir -p "$WORK"
started=$(date +%s)
log() { printf '[docker.sh %s] %s\n' "$(date +%T)" "$*"; }

# ---- 1. an engine
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    log "installing docker.io and debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io debootstrap >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: $WORK/dockerd.log)"
    dockerd >"$WORK/dockerd.log" 2>&1 &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        log "dockerd did not start:"
        tail -n 20 "$WORK/dockerd.log" || true
        exit 3
    fi
fi

# ---- 2. the base image
if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    if ! timeout 30 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
        log "no registry: making debian:bookworm-slim with debootstrap (about 2 minutes)"
        rootfs="$WORK/rootfs"
        rm -rf "$rootfs"
        debootstrap --variant=minbase bookworm "$rootfs" >"$WORK/debootstrap.log" 2>&1 \
            || { tail -n 20 "$WORK/debootstrap.log"; exit 1; }
        tar -C "$rootfs" -c . | docker import - debian:bookworm-slim >/dev/null
        rm -rf "$rootfs"
    fi
fi

# ---- 3. pip's CA bundle, when this machine's pip is configured with one (DOCKER.md convention)
build_args=()
made_cert=""
cert="${PIP_CERT:-}"
if [ -z "$cert" ]; then
    cert="$("$PYTHON" -m pip config list 2>/dev/null | sed -n "s/^global\.cert='\(.*\)'$/\1/p" | head -n 1)"
fi
if [ -f build-ca.crt ]; then
    build_args+=(--build-arg PIP_CERT=/build/build-ca.crt)
elif [ -n "$cert" ] && [ -f "$cert" ]; then
    cp "$cert" build-ca.crt
    made_cert=1
    build_args+=(--build-arg PIP_CERT=/build/build-ca.crt)
fi

cleanup() {
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    if [ -n "$made_cert" ]; then rm -f build-ca.crt; fi
}
trap cleanup EXIT

# ---- 4. build
log "building $IMAGE"
build_start=$(date +%s)
docker build "${build_args[@]}" -t "$IMAGE" . 2>&1 | tee "$WORK/build.log" | tail -n 25
build_seconds=$(( $(date +%s) - build_start ))
size_bytes=$(docker image inspect -f '{{.Size}}' "$IMAGE")

# ---- 5. run, wait until healthy and ready, ask
docker rm -f "$NAME" >/dev/null 2>&1 || true
# A short health interval, so the image's own HEALTHCHECK is seen to pass within the run.
docker run -d --name "$NAME" -p "127.0.0.1:$PORT:8000" -e LLM_ATLAS_API_KEY="$KEY" \
    --health-interval 2s --health-start-period 2s "$IMAGE" >/dev/null
run_start=$(date +%s)
base="http://127.0.0.1:$PORT"

wait_for() {  # url, seconds
    for _ in $(seq "$2"); do
        if "$PYTHON" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)" "$1" \
            >/dev/null 2>&1; then
            return 0
        fi
        if [ "$(docker inspect -f '{{.State.Running}}' "$NAME")" != "true" ]; then
            log "the container stopped:"
            docker logs "$NAME" 2>&1 | tail -n 30
            return 1
        fi
        sleep 1
    done
    log "$1 did not answer in $2 s"
    docker logs "$NAME" 2>&1 | tail -n 30
    return 1
}
wait_for "$base/healthz" 60
healthy_seconds=$(( $(date +%s) - run_start ))
wait_for "$base/readyz" 180
ready_seconds=$(( $(date +%s) - run_start ))

health=""
for _ in $(seq 30); do
    health=$(docker inspect -f '{{.State.Health.Status}}' "$NAME")
    [ "$health" = "healthy" ] && break
    sleep 1
done
[ "$health" = "healthy" ] || { log "HEALTHCHECK says: $health"; docker inspect -f '{{json .State.Health}}' "$NAME"; exit 1; }

user_id=$(docker exec "$NAME" id -u)
[ "$user_id" != "0" ] || { log "the service runs as root"; exit 1; }

"$PYTHON" - "$base" "$KEY" "$QUESTION" <<'PY'
import json
import sys
import urllib.error
import urllib.request

base, key, question = sys.argv[1:4]
ready = json.load(urllib.request.urlopen(f"{base}/readyz", timeout=10))
manifest = json.load(open("corpus/manifest.json", encoding="utf-8"))
assert ready["documents"] == len(manifest["documents"]), ready  # every bundled document is served
print(f"ready: {ready['documents']} documents, {ready['chunks']} chunks, version {ready.get('version')}")
request = urllib.request.Request(f"{base}/v1/ask", data=json.dumps({"question": question}).encode(),
                                 headers={"Content-Type": "application/json"})
try:
    urllib.request.urlopen(request, timeout=30)
    sys.exit("the API answered without the key")
except urllib.error.HTTPError as exc:
    assert exc.code == 401, exc.code
request.add_header("Authorization", f"Bearer {key}")
answer = json.load(urllib.request.urlopen(request, timeout=60))
assert answer["answered"] and answer["citations"], answer
print("answer:", answer["answer"][:300].replace("\n", " "))
print("cites:", "; ".join(f"[{c['n']}] {c['title']}" for c in answer["citations"]))
PY

log "image $IMAGE: $(( size_bytes / 1024 / 1024 )) MiB; build ${build_seconds} s; healthy after ${healthy_seconds} s, \
ready after ${ready_seconds} s; HEALTHCHECK $health; runs as uid $user_id; total $(( $(date +%s) - started )) s"
echo "DOCKER_CHECK_OK"
