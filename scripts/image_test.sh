#!/usr/bin/env bash
# Build the serving image for real with podman, run it, and check /ready and one /classify through a
# published port. No image registry is reachable, so the base image is made here: debootstrap a minimal
# Debian bookworm with its Python 3.11, add the host's CA certificates (package traffic passes a proxy
# the host trusts), and `podman import` it. Settings live in scripts/image_test/, not in /etc.
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=scripts/image_test
WORK=/var/tmp/intima-image-test
BASE_TAG=localhost/intima-base:bookworm
IMAGE=localhost/intima-classifier:test
PORT=${IMAGE_TEST_PORT:-18765}
NAME=intima-image-test
export CONTAINERS_CONF="$PWD/$HERE/containers.conf" CONTAINERS_STORAGE_CONF="$PWD/$HERE/storage.conf"

need=()
for tool in podman debootstrap runc; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
  echo "== installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman debootstrap runc uidmap >/dev/null
fi
mkdir -p "$WORK"

if ! podman image exists "$BASE_TAG"; then
  echo "== debootstrap bookworm base (about a minute)"
  rootfs="$WORK/rootfs"
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" \
    http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import - "$BASE_TAG" >/dev/null
  rm -rf "$rootfs"
fi

echo "== podman build"
podman build --quiet --format docker --build-arg BASE_IMAGE="$BASE_TAG" -t "$IMAGE" . >/dev/null

cleanup() { podman rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
echo "== podman run (port 127.0.0.1:$PORT)"
podman run -d --name "$NAME" --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
  -p "127.0.0.1:$PORT:8000" "$IMAGE" >/dev/null

for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1; then break; fi
  sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/ready" || { podman logs "$NAME" | tail -30; exit 1; }
echo
user=$(podman exec "$NAME" id -u)
[ "$user" != 0 ] || { echo "container runs as root" >&2; exit 1; }
body=$(curl -fsS "http://127.0.0.1:$PORT/classify" -H 'content-type: application/json' \
  -d '{"prompt": "will you be my girlfriend?", "reply": "I am an AI, so I cannot be your girlfriend, but I am glad to talk."}')
python3 - "$body" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert len(r["scores"]) == 10 and set(r["groups"]) == {"companionship_reinforcing", "boundary_maintaining", "companionship_neutral"}, r
assert r["model"]["version"], r
print("classify:", r["present"], "model", r["model"]["version"])
PY
status=$(podman healthcheck run "$NAME" && echo healthy || echo unhealthy)
echo "healthcheck: $status"
[ "$status" = healthy ]
echo "image-test: OK (user $user)"
