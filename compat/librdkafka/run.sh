#!/usr/bin/env bash
# Run librdkafka's own integration tests (tests/0nnn-*.c, *.cpp) against a
# fresh Runnel broker.
#
# Usage:  bash compat/librdkafka/run.sh [--all | --allow-list] [NNNN ...]
#   --all         run every broker-facing test and report (default); exits 0
#   --allow-list  run only the tests in allow-list.txt; exits 1 if any fails
#   NNNN ...      run only these test numbers (e.g. 0001 0045); exits 0
#
# Steps (each idempotent):
#   1. copy librdkafka's source from the rdkafka-sys crate in the local cargo
#      registry (running `cargo fetch` first if it is not there) into
#      compat/librdkafka/build/librdkafka (git-ignored; nothing of librdkafka
#      is committed)
#   2. ./configure (no --install-deps: no network) and build the library and
#      the test runner, only when not built yet
#   3. build target/debug/runnel if missing, start it on 127.0.0.1:0 with a
#      fresh data directory, write test.conf with its address
#   4. run the tests, RUNNEL_COMPAT_JOBS numbers at a time (a number can hold
#      several tests, e.g. 0045_*; only the broker-facing ones run:
#      test-runner -L), each under `timeout`, continuing after failures; with
#      one job, restart the broker if a test leaves it dead
#   5. write results.tsv (number, status, seconds, tests) and print
#      "N passed, M failed"
# A test the runner skips (e.g. it needs a cluster tool or a newer version)
# counts as neither passed nor failed; results.tsv says SKIPPED.
#
# Knobs (environment variables):
#   RUNNEL_COMPAT_TIMEOUT=120    per-test time limit, seconds
#   RUNNEL_COMPAT_JOBS=2         tests run at once against the one broker (the
#                                suite's tests use random topic and group names,
#                                and most of their time is waiting); 1 runs them
#                                one after another and restarts a broker that died
#   RUNNEL_COMPAT_KAFKA_VERSION  Kafka version the runner assumes (3.9.0)
#   RUNNEL_COMPAT_SCENARIO=default  the suite's broker scenario: "default"
#                                (topics auto-created) or "noautocreate" (the
#                                broker gets auto.create.topics.enable=false and
#                                only that scenario's tests run; --allow-list
#                                still reads allow-list.txt)
#   RUNNEL_COMPAT_QUICK=1        pass -Q (quick mode). Off by default: quick
#                                mode skips most sub-tests (SUB_TEST), so
#                                many tests would pass without testing much
#   RUNNEL_COMPAT_RESULTS=FILE   results file (default compat/librdkafka/results.tsv)
#   RUNNEL_COMPAT_LOGS=DIR       test and broker logs (default build/logs); give
#                                concurrent runs their own RESULTS and LOGS
#   RUNNEL_BIN=/path/runnel      broker binary (default target/debug/runnel)
#   RUST_LOG                     broker log filter (default info); the broker
#                                log is build/logs/broker-N.log
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$HERE/build
SRC=$BUILD/librdkafka
TESTS_DIR=$SRC/tests
LOGS=${RUNNEL_COMPAT_LOGS:-$BUILD/logs}
ALLOW_LIST=$HERE/allow-list.txt
RESULTS=${RUNNEL_COMPAT_RESULTS:-$HERE/results.tsv}
TIMEOUT=${RUNNEL_COMPAT_TIMEOUT:-120}
JOBS=${RUNNEL_COMPAT_JOBS:-2}
KAFKA_VERSION=${RUNNEL_COMPAT_KAFKA_VERSION:-3.9.0}
SCENARIO=${RUNNEL_COMPAT_SCENARIO:-default}
case "$SCENARIO" in
  default) AUTO_CREATE=true ;;
  noautocreate) AUTO_CREATE=false ;;
  *) echo "run.sh: RUNNEL_COMPAT_SCENARIO must be default or noautocreate" >&2; exit 2 ;;
esac
# The rdkafka-sys version the workspace locks (it ships librdkafka's source).
RDKAFKA_SYS_VERSION=$(awk '/^name = "rdkafka-sys"$/ { getline; gsub(/version = |"/, ""); print; exit }' \
  "$REPO_ROOT/Cargo.lock" 2>/dev/null || true)
CRATE=rdkafka-sys-${RDKAFKA_SYS_VERSION:-4.10.0+2.12.1}
CONFIGURE_FLAGS=(--disable-ssl --disable-gssapi --disable-curl --disable-lz4-ext --disable-zstd)

MODE=all
SELECTED=()
for arg in "$@"; do
  case "$arg" in
    --all) MODE=all ;;
    --allow-list) MODE=allow ;;
    -h | --help) sed -n '2,35p' "${BASH_SOURCE[0]}"; exit 0 ;;
    [0-9][0-9][0-9][0-9]) MODE=some; SELECTED+=("$arg") ;;
    *) echo "run.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

log() { echo "compat: $*"; }

# ---------------------------------------------------------------------------
# 1-2. Source and build
# ---------------------------------------------------------------------------
find_crate_src() {
  local d
  for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$CRATE"/librdkafka; do
    if [ -f "$d/configure" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

build_librdkafka() {
  local crate_src stamp want
  if ! crate_src=$(find_crate_src); then
    log "librdkafka source not in the cargo registry; running cargo fetch"
    (cd "$REPO_ROOT" && cargo fetch --locked)
    crate_src=$(find_crate_src) || { echo "run.sh: $CRATE not found after cargo fetch" >&2; exit 1; }
  fi
  stamp=$BUILD/.built
  # rapidjson (Debian rapidjson-dev) lets the C++ tests that check statistics
  # JSON run (0053, 0098, 0101, 0110); configure picks it up when present.
  local rapidjson=no
  [ -f /usr/include/rapidjson/schema.h ] && rapidjson=yes
  want="$CRATE ${CONFIGURE_FLAGS[*]} rapidjson=$rapidjson"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$TESTS_DIR/test-runner" ]; then
    log "librdkafka and its test runner already built ($CRATE)"
    return 0
  fi
  local t0=$SECONDS jobs
  jobs=$(nproc 2>/dev/null || echo 2)
  mkdir -p "$BUILD"
  rm -f "$stamp"
  if [ ! -f "$SRC/.copied" ] || [ "$(cat "$SRC/.copied")" != "$crate_src" ]; then
    log "copying $crate_src to $SRC"
    rm -rf "$SRC"
    cp -a "$crate_src" "$SRC"
    chmod -R u+w "$SRC"
    echo "$crate_src" >"$SRC/.copied"
  fi
  log "building librdkafka and its test runner (logs in $BUILD/*.log)"
  (cd "$SRC" && ./configure "${CONFIGURE_FLAGS[@]}") >"$BUILD/configure.log" 2>&1 \
    || { tail -30 "$BUILD/configure.log" >&2; exit 1; }
  make -C "$SRC" -j"$jobs" libs >"$BUILD/make.log" 2>&1 \
    || { tail -30 "$BUILD/make.log" >&2; exit 1; }
  make -C "$TESTS_DIR" -j"$jobs" build >"$BUILD/make-tests.log" 2>&1 \
    || { tail -30 "$BUILD/make-tests.log" >&2; exit 1; }
  echo "$want" >"$stamp"
  log "built in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------------------
# 3. Broker
# ---------------------------------------------------------------------------
RUNNEL_BIN=${RUNNEL_BIN:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/runnel}
BROKER_PID=""
BROKER_ADDR=""
BROKER_N=0
TMP_ROOT=""

stop_broker() {
  if [ -n "$BROKER_PID" ]; then
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
  fi
}

cleanup() {
  stop_broker
  if [ -n "$TMP_ROOT" ]; then
    rm -rf "$TMP_ROOT"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_broker() {
  BROKER_N=$((BROKER_N + 1))
  local data=$TMP_ROOT/data-$BROKER_N out=$TMP_ROOT/stdout-$BROKER_N
  local blog=$LOGS/broker-$BROKER_N.log i
  # The suite's "default" scenario (tests/scenarios/default.json): topics are
  # auto-created with 4 partitions. Its replication factor 3 needs a cluster.
  # Group tests create many short-lived groups: a short initial rebalance
  # delay keeps them within their time limits, as Kafka test clusters do.
  local extra=()
  # A free port for the HTTP admin endpoint too (its default 9644 may be taken
  # by another broker), when the binary has one.
  if "$TMP_ROOT/runnel" serve --help 2>/dev/null | grep -- '--http' >/dev/null; then
    extra+=(--http 127.0.0.1:0)
  fi
  mkdir -p "$data"
  : >"$out"
  RUST_LOG=${RUST_LOG:-info} "$TMP_ROOT/runnel" serve --listen 127.0.0.1:0 --data-dir "$data" \
    "${extra[@]}" --set num.partitions=4 --set auto.create.topics.enable=$AUTO_CREATE \
    --set group.initial.rebalance.delay.ms=100 \
    >"$out" 2>"$blog" &
  BROKER_PID=$!
  BROKER_ADDR=""
  for i in $(seq 1 300); do
    BROKER_ADDR=$(sed -n 's/^runnel listening on //p' "$out" | head -1)
    [ -n "$BROKER_ADDR" ] && break
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then
      echo "run.sh: broker exited at start-up; log $blog:" >&2
      tail -20 "$blog" >&2
      exit 1
    fi
    sleep 0.1
  done
  if [ -z "$BROKER_ADDR" ]; then
    echo "run.sh: broker did not print its address within 30s" >&2
    exit 1
  fi
  log "broker #$BROKER_N (pid $BROKER_PID) listening on $BROKER_ADDR, log $blog"
  cat >"$TMP_ROOT/test.conf" <<EOF
# Written by compat/librdkafka/run.sh for the Runnel broker it started.
bootstrap.servers=$BROKER_ADDR
test.topic.random=true
EOF
}

# ---------------------------------------------------------------------------
# 4. Tests
# ---------------------------------------------------------------------------
# Broker-facing test numbers (with their test names) from the runner's table.
list_broker_tests() {
  python3 "$HERE/list_tests.py" "$TESTS_DIR/test.c" --broker --scenario "$SCENARIO"
}

allow_listed() {
  sed -e 's/#.*//' -e 's/[[:space:]]//g' "$ALLOW_LIST" | grep -E '^[0-9]{4}$' || true
}

run_one() {
  local num=$1 names=$2 tlog=$LOGS/$1.log t0 rc status secs
  t0=$EPOCHREALTIME
  set +e
  # The braces keep bash's "Segmentation fault" notices (a failing
  # test may abort the runner) out of our output; the test log has the story.
  # stdbuf: line-buffered, so a runner that aborts on a failure keeps its
  # last lines (the failure message) in the log.
  { (
    cd "$TESTS_DIR"
    export LD_LIBRARY_PATH=../src:../src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export RDKAFKA_TEST_CONF=$TMP_ROOT/test.conf TEST_MODE=bare RDKAFKA_GITVER=runnel-compat
    export TESTS=$num TEST_KAFKA_VERSION=$KAFKA_VERSION TEST_SCENARIO=$SCENARIO
    unset TESTS_SKIP TESTS_SKIP_BEFORE SUBTESTS
    quick=()
    [ "${RUNNEL_COMPAT_QUICK:-0}" = "1" ] && quick=(-Q)
    exec timeout --foreground -k 10 "$TIMEOUT" stdbuf -oL -eL ./test-runner -L -p1 "${quick[@]}"
  ) >"$tlog" 2>&1 </dev/null; } 2>/dev/null
  rc=$?
  set -e
  secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    status=TIMEOUT
  elif [ "$rc" -ne 0 ]; then
    status=FAILED
  # grep reads all of sed's output (no -q): under pipefail, a grep that quit
  # at the first match could kill sed with SIGPIPE and turn a pass into a skip.
  elif sed 's/\x1b\[[0-9;]*m//g' "$tlog" | grep -E '^\| +[0-9]{4}_[^ ]+ +\| +PASSED' >/dev/null; then
    status=PASSED
  else
    status=SKIPPED
  fi
  if ! kill -0 "$BROKER_PID" 2>/dev/null; then
    status="$status+BROKER_DIED"
    [ "$status" = "PASSED+BROKER_DIED" ] && status=FAILED+BROKER_DIED
    # Parallel workers share the broker: only a lone worker restarts it.
    if [ "$JOBS" -le 1 ]; then
      log "broker died during $num (see $LOGS/broker-$BROKER_N.log); restarting it"
      BROKER_PID=""
      start_broker
    fi
  fi
  printf '%s\t%s\t%s\t%s\n' "$num" "$status" "$secs" "$names" >>"$RESULTS"
  printf 'compat: %-5s %-8s %6ss  %s\n' "$num" "$status" "$secs" "$names"
}

# The next test number of the shared queue, or a non-zero status when it is empty.
next_test() {
  local i
  {
    flock 9
    i=$(cat "$TMP_ROOT/next")
    echo $((i + 1)) >"$TMP_ROOT/next"
  } 9>"$TMP_ROOT/queue.lock"
  sed -n "$((i + 1))p" "$TMP_ROOT/queue" | grep .
}

# One of RUNNEL_COMPAT_JOBS workers: runs queued tests until none is left.
worker() {
  local num
  while num=$(next_test); do
    run_one "$num" "${names[$num]}"
  done
}

main() {
  local t_all=$SECONDS
  build_librdkafka
  if [ ! -x "$RUNNEL_BIN" ]; then
    log "building runnel"
    (cd "$REPO_ROOT" && cargo build -p runnel)
  fi

  # number -> names of its broker-facing tests
  declare -A names=()
  local name kind num
  while IFS=$'\t' read -r name kind; do
    num=${name:0:4}
    names[$num]="${names[$num]:+${names[$num]},}$name"
  done < <(list_broker_tests)

  local todo=()
  case "$MODE" in
    all) mapfile -t todo < <(printf '%s\n' "${!names[@]}" | sort) ;;
    allow)
      mapfile -t todo < <(allow_listed)
      if [ "${#todo[@]}" -eq 0 ]; then
        log "allow-list.txt is empty: nothing to run"
        echo "0 passed, 0 failed"
        return 0
      fi
      ;;
    some) todo=("${SELECTED[@]}") ;;
  esac
  for num in "${todo[@]}"; do
    if [ -z "${names[$num]:-}" ]; then
      echo "run.sh: $num is not a broker-facing test number" >&2
      exit 2
    fi
  done

  TMP_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/runnel-compat.XXXXXX")
  mkdir -p "$LOGS"
  rm -f "$LOGS"/broker-*.log
  printf 'test\tstatus\tseconds\tnames\n' >"$RESULTS"
  # A private copy, so a rebuild of target/ during the run cannot change the
  # broker under test half-way.
  cp "$RUNNEL_BIN" "$TMP_ROOT/runnel"
  start_broker
  log "running ${#todo[@]} test numbers, $JOBS at a time, ${TIMEOUT}s limit each, Kafka version $KAFKA_VERSION, scenario $SCENARIO"

  if [ "$JOBS" -le 1 ]; then
    for num in "${todo[@]}"; do
      run_one "$num" "${names[$num]}"
    done
  else
    printf '%s\n' "${todo[@]}" >"$TMP_ROOT/queue"
    echo 0 >"$TMP_ROOT/next"
    local w workers=()
    for w in $(seq 1 "$JOBS"); do
      worker &
      workers+=($!)
    done
    wait "${workers[@]}"
  fi

  local passed failed skipped
  passed=$(awk -F'\t' 'NR > 1 && $2 == "PASSED"' "$RESULTS" | wc -l)
  skipped=$(awk -F'\t' 'NR > 1 && $2 == "SKIPPED"' "$RESULTS" | wc -l)
  failed=$(awk -F'\t' 'NR > 1 && $2 != "PASSED" && $2 != "SKIPPED"' "$RESULTS" | wc -l)
  log "results in $RESULTS, test logs in $LOGS; $skipped skipped; $((SECONDS - t_all))s in all"
  echo "$passed passed, $failed failed"
  if [ "$MODE" = allow ] && { [ "$failed" -ne 0 ] || [ "$skipped" -ne 0 ]; }; then
    echo "run.sh: allow-listed tests did not pass:" >&2
    awk -F'\t' 'NR > 1 && $2 != "PASSED" {print "  " $1 " " $2 " " $4}' "$RESULTS" >&2
    return 1
  fi
}

# One line: bash has read the whole script before running it, so editing
# this file during a run cannot derail the run.
main "$@"; exit $?
