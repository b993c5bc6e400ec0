#!/usr/bin/env bash
# Smoke test of the broker image built from deploy/Dockerfile:
#   deploy/smoke-test.sh [IMAGE]        (default image: runnel:test)
#
# Needs a Docker engine and the `runnel` binary on the host (for the client
# side; target/release/runnel or target/debug/runnel, or $RUNNEL_BIN). It
# runs the image with a named volume, checks that the broker runs as the
# non-root `runnel` user and reports ready, produces 1,000 records from the
# host into a new 3-partition topic, stops the container with SIGTERM
# (docker stop) and checks for a clean exit, starts a new container on the
# same volume and checks that it started clean and serves every record. Exits non-zero on any failure; removes its
# containers and volume.
set -euo pipefail

IMAGE=${1:-runnel:test}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${RUNNEL_BIN:-}
for candidate in "$ROOT/target/release/runnel" "$ROOT/target/debug/runnel"; do
  [ -z "$BIN" ] && [ -x "$candidate" ] && BIN=$candidate
done
[ -n "$BIN" ] || { echo "no runnel binary on the host: build it or set RUNNEL_BIN" >&2; exit 1; }
NAME=runnel-smoke-$$
VOLUME=runnel-smoke-$$
PORT=${SMOKE_PORT:-19092}
HTTP=${SMOKE_HTTP:-19644}

cleanup() {
  docker rm -f "$NAME" > /dev/null 2>&1 || true
  docker volume rm "$VOLUME" > /dev/null 2>&1 || true
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; docker logs "$NAME" 2>&1 | tail -20 >&2 || true; exit 1; }

start() {
  # Host networking: the test needs no port publishing (and works where the engine has no bridge network).
  docker run -d --name "$NAME" --network host -v "$VOLUME:/var/lib/runnel" "$IMAGE" \
    --listen "127.0.0.1:$PORT" --http "127.0.0.1:$HTTP" --advertise "127.0.0.1:$PORT" > /dev/null
  for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$HTTP/ready" > /dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  fail "the container did not become ready"
}

echo "image: $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
user=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
[ "$user" = "runnel" ] || fail "the image runs as '$user', not runnel"
volumes=$(docker image inspect -f '{{json .Config.Volumes}}' "$IMAGE")
[[ "$volumes" == *"/var/lib/runnel"* ]] || fail "no data volume declared: $volumes"

start
uid=$(docker exec "$NAME" id -u)
[ "$uid" != "0" ] || fail "the broker runs as root"
echo "broker runs as uid $uid; /health: $(curl -fsS "http://127.0.0.1:$HTTP/health")"

"$BIN" topic create smoke --brokers "127.0.0.1:$PORT" --partitions 3 > /dev/null
seq 1 1000 | "$BIN" produce smoke --brokers "127.0.0.1:$PORT" --acks all > /dev/null
count=$("$BIN" consume smoke --brokers "127.0.0.1:$PORT" --from beginning --until-end --format '%s\n' | wc -l)
[ "$count" -eq 1000 ] || fail "consumed $count records before the restart, expected 1000"

docker stop -t 60 "$NAME" > /dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
[ "$code" -eq 0 ] || fail "docker stop: exit code $code, expected a clean exit (0)"
docker rm "$NAME" > /dev/null

start
# The log directory's start-up report says whether the previous stop left the clean-shutdown marker.
docker logs "$NAME" 2>&1 | grep "log directory opened" | grep "clean: true" >/dev/null \
  || fail "the second start was not a clean start"
count=$("$BIN" consume smoke --brokers "127.0.0.1:$PORT" --from beginning --until-end --format '%s\n' | wc -l)
[ "$count" -eq 1000 ] || fail "consumed $count records after the restart, expected 1000"
echo "OK: ready as a non-root user; 1000 records kept across docker stop (clean exit, clean start) and a new container on the same volume"
