#!/usr/bin/env bash
# Runnel's foundation benchmark: every number in docs/BENCHMARKS.md comes from
# one run of this script on one machine.
#
# Usage: bash scripts/bench.sh [OUT_DIR]
#   REPEAT=3         runs per throughput configuration (min and median are reported)
#   SECONDS_PER_RUN=15
#   RESTART_GB="1 4" log sizes for the restart-after-SIGKILL measurement
#   BENCH_DIR=/tmp/runnel-bench   where data files go (same disk as the baseline)
#   SECTIONS="baselines produce consume e2e restart loadgen compaction cleaner-latency transactions groups tls"
#                    the sections to run (all by default)
#   PYTHON=.venv/bin/python  the interpreter with confluent-kafka, for the groups section
#   GROUP_CONFIGS="..."  the groups section's configurations (bench_groups.py --help)
#   CLEANER_IO_MAX=60000000  log.cleaner.io.max.bytes.per.second of the
#                    throttled configuration in the compaction section
#   TXN_PRODUCERS=2  producers of each configuration in the transactions section
#   LOADGEN_PRODUCERS=1, LOADGEN_RECORDS=1000000  the load generator section's
#                    runnel bench producers and records per run
#
# Baselines measured in the same run: the disk's sequential write rate with
# and without fdatasync (dd, fio), and loopback TCP throughput (iperf3).
# Broker CPU time comes from /proc/<pid>/stat; memory from /proc/<pid>/status.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=${1:-bench-results}
REPEAT=${REPEAT:-3}
SECS=${SECONDS_PER_RUN:-15}
RESTART_GB=${RESTART_GB:-"1 4"}
DIR=${BENCH_DIR:-/tmp/runnel-bench}
BIN=${CARGO_TARGET_DIR:-target}/release/runnel
mkdir -p "$OUT"
rm -rf "$DIR" && mkdir -p "$DIR"

for pkg in fio iperf3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
done
cargo build --release -p runnel --features client-tls >/dev/null

log() { echo "$*" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"
SECTIONS=${SECTIONS:-"baselines produce consume e2e restart loadgen compaction cleaner-latency transactions groups tls"}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
log "# machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), $(date -u +%FT%TZ)"

# --- baselines -------------------------------------------------------------
if want baselines; then
log "## disk"
dd_rate() { dd "$@" 2>&1 | awk -F', ' '/copied/{print $NF}'; }
log "dd 2 GiB, 1 MiB writes, one fdatasync at the end: $(dd_rate if=/dev/zero of="$DIR/dd.bin" bs=1M count=2048 conv=fdatasync)"
rm -f "$DIR/dd.bin"
fio_bw() {
  fio --name=seq --directory="$DIR" --rw=write --size=1G --ioengine=psync --output-format=json "$@" \
    | python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["write"]; print("%.1f MB/s" % (j["bw_bytes"]/1e6))'
  rm -f "$DIR"/seq.*
}
log "fio 1 GiB, 256 KiB writes, no fsync (end_fsync=1): $(fio_bw --bs=256k --end_fsync=1)"
log "fio 1 GiB, 256 KiB writes, fdatasync after each: $(fio_bw --bs=256k --fdatasync=1)"
log "fio 1 GiB, 64 KiB writes, fdatasync after each: $(fio_bw --bs=64k --fdatasync=1)"

log "## loopback"
iperf3 -s -1 -B 127.0.0.1 -p 5299 >/dev/null 2>&1 &
sleep 1
log "iperf3 127.0.0.1, 10 s, 1 stream: $(iperf3 -c 127.0.0.1 -p 5299 -t 10 -J | python3 -c 'import json,sys; print("%.0f MB/s" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/8e6))')"

fi

# --- broker helpers ---------------------------------------------------------
BROKER_PID=
ADDR=
start_broker() { # data_dir, extra args...
  local data=$1; shift
  "$BIN" serve --listen 127.0.0.1:0 --http 127.0.0.1:0 --data-dir "$data" "$@" > "$DIR/broker.out" 2> "$DIR/broker.err" &
  BROKER_PID=$!
  for _ in $(seq 1 600); do
    ADDR=$(sed -n 's/^runnel listening on //p' "$DIR/broker.out")
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  echo "broker did not start" >&2; cat "$DIR/broker.err" >&2; exit 1
}
stop_broker() { kill -TERM "$BROKER_PID"; wait "$BROKER_PID" || true; BROKER_PID=; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/{print $2}' "/proc/$1/status"; }
TICKS=$(getconf CLK_TCK)

# One produce run: prints "records/s MB/s cpu_s_per_GB p50 p99".
produce_run() { # topic, acks, extra bench args...
  local topic=$1 acks=$2; shift 2
  local t0; t0=$(cpu_ticks "$BROKER_PID")
  "$BIN" bench produce --brokers "$ADDR" --topic "$topic" --acks "$acks" --duration "$SECS" --json --quiet "$@" > "$DIR/run.json"
  local t1; t1=$(cpu_ticks "$BROKER_PID")
  python3 - "$DIR/run.json" "$((t1 - t0))" "$TICKS" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); ticks = int(sys.argv[2]); hz = int(sys.argv[3])
gb = j["bytes"] / 1e9
lat = j.get("ack_latency_ms") or {}
commit = j.get("commit_latency_ms") or {}
print("%.0f %.1f %.1f %s %s %s %s" % (j["records_per_s"], j["mb_per_s"], (ticks / hz) / gb if gb else 0, lat.get("p50", "-"), lat.get("p99", "-"), commit.get("p50", "-"), commit.get("p99", "-")))
PY
}

stats() { # "label" then lines "records/s MB/s cpu p50 p99" on stdin
  python3 "$DIR/stats.py" "$1"
}
cat > "$DIR/stats.py" <<'PY'
import statistics
import sys

label = sys.argv[1]
rows = [line.split() for line in sys.stdin if line.strip()]
mbs = [float(r[1]) for r in rows]
cpu = [float(r[2]) for r in rows]
runs = " ".join(r[1] for r in rows)
print(
    f"{label}: MB/s min {min(mbs):.1f} median {statistics.median(mbs):.1f} (runs: {runs}); "
    f"records/s median {statistics.median(float(r[0]) for r in rows):.0f}; "
    f"broker CPU s/GB median {statistics.median(cpu):.1f}; "
    f"ack latency ms p50/p99 (last run, at full load) {rows[-1][3]}/{rows[-1][4]}"
    + (f"; commit latency ms p50/p99 (last run) {rows[-1][5]}/{rows[-1][6]}" if rows[-1][5:6] not in ([], ["-"]) else "")
)
PY

# --- produce throughput -------------------------------------------------------
if want produce; then
log "## produce, 1 KiB records, ${SECS}s per run, $REPEAT runs"
bench_config() { # label, acks, broker args...
  local label=$1 acks=$2; shift 2
  rm -rf "$DIR/data"; start_broker "$DIR/data" "$@"
  : > "$DIR/rows"
  for i in $(seq 1 "$REPEAT"); do produce_run "p-$i" "$acks" --partitions 4 --producers 2 >> "$DIR/rows"; done
  log "$(stats "$label" < "$DIR/rows"); broker RSS $(rss_kib "$BROKER_PID") KiB, peak $(hwm_kib "$BROKER_PID") KiB"
  stop_broker
}
bench_config "acks=1" 1
bench_config "acks=all, fsync before ack (default)" all
bench_config "acks=all, flush interval Long.MAX" all --set log.flush.interval.messages=9223372036854775807

fi

# --- consume throughput ----------------------------------------------------------
if want consume; then
log "## consume, 1 KiB records"
rm -rf "$DIR/data"; start_broker "$DIR/data" --set log.flush.interval.messages=9223372036854775807
"$BIN" bench produce --brokers "$ADDR" --topic c --acks 1 --count 3000000 --partitions 4 --producers 2 --json --quiet > /dev/null
: > "$DIR/rows"
for i in $(seq 1 "$REPEAT"); do
  t0=$(cpu_ticks "$BROKER_PID")
  "$BIN" bench consume --brokers "$ADDR" --topic c --count 3000000 --json --quiet > "$DIR/run.json"
  t1=$(cpu_ticks "$BROKER_PID")
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); gb=j["bytes"]/1e9; print("%.0f %.1f %.1f - -" % (j["records_per_s"], j["mb_per_s"], (int(sys.argv[2])/int(sys.argv[3]))/gb))' "$DIR/run.json" "$((t1 - t0))" "$TICKS" >> "$DIR/rows"
done
log "$(stats "consume 3,000,000 records from offset 0" < "$DIR/rows")"
stop_broker

fi

# --- end-to-end latency ------------------------------------------------------------
if want e2e; then
log "## end-to-end latency at 5,000 records/s, 1 KiB, acks=all, default fsync"
rm -rf "$DIR/data"; start_broker "$DIR/data"
"$BIN" bench e2e --brokers "$ADDR" --topic e2e --rate 5000 --duration 30 --json --quiet > "$DIR/e2e.json"
log "$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); l=j["e2e_latency_ms"]; print("records %d; latency ms p50 %s p90 %s p99 %s p999 %s max %s" % (j["records"], l["p50"], l["p90"], l["p99"], l["p999"], l["max"]))' "$DIR/e2e.json")"
stop_broker

fi

# --- restart after SIGKILL -----------------------------------------------------------
if want restart; then
# Default (durable) configuration. The log is filled to N GB, then a second
# producer keeps writing while the broker is killed, so there is a tail to
# recover. The restart is timed twice: with the page cache as the kill left it,
# and after dropping the page cache (cold; needs root, skipped otherwise).
log "## restart time after SIGKILL (start to the listening line), default config"
restart_once() { # label
  local start end
  start=$(date +%s.%N); start_broker "$DIR/data"; end=$(date +%s.%N)
  log "  $1: $(python3 -c "print('%.2f s' % ($end - $start))"); $(grep -o 'bytes_scanned: [0-9]*' "$DIR/broker.err" | head -1)"
}
for gb in $RESTART_GB; do
  rm -rf "$DIR/data"; start_broker "$DIR/data"
  "$BIN" bench produce --brokers "$ADDR" --topic r --acks 1 --count $((gb * 1000000)) --partitions 4 --producers 2 --json --quiet > /dev/null
  "$BIN" bench produce --brokers "$ADDR" --topic r --acks 1 --duration 6 --json --quiet > /dev/null 2>&1 &
  load=$!
  sleep 3
  kill -KILL "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true
  wait "$load" 2>/dev/null || true
  log "log of $(du -sh "$DIR/data" | cut -f1) after SIGKILL during writes:"
  restart_once "restart, page cache warm"
  kill -KILL "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true
  if sync && (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then
    restart_once "restart after a second SIGKILL at idle, page cache dropped"
  fi
  stop_broker
done
fi

# --- load generator -----------------------------------------------------------------
if want loadgen; then
# runnel bench produce against librdkafka's own generator, rdkafka_performance,
# built from the librdkafka source the conformance step builds, on one broker
# with the same settings, alternating: is runnel bench ever the bottleneck?
LOADGEN_RECORDS=${LOADGEN_RECORDS:-1000000}
log "## load generator: runnel bench produce vs librdkafka's rdkafka_performance, 1 KiB, acks=1, $LOADGEN_RECORDS records, 4 partitions"
PERF_DIR=compat/librdkafka/build/librdkafka
if [ -f "$PERF_DIR/src/librdkafka.a" ] && [ ! -x "$PERF_DIR/examples/rdkafka_performance" ]; then
  make -C "$PERF_DIR/examples" rdkafka_performance > /dev/null 2>&1 || true
fi
if [ -x "$PERF_DIR/examples/rdkafka_performance" ]; then
  # Each run gets a fresh broker (no log or page cache inherited from the other
  # generator), and the order alternates from round to round.
  # The generator's own CPU time (user+sys, /usr/bin/time) per GB sent is the
  # steadier figure on a shared machine: every CPU-second it burns is taken
  # from the broker.
  gen_run() { # ours|theirs: prints "MB/s generator-CPU-s-per-GB"
    rm -rf "$DIR/data"; start_broker "$DIR/data" --set log.flush.interval.messages=9223372036854775807
    "$BIN" topic create gen --brokers "$ADDR" --partitions 4 > /dev/null
    local mb
    if [ "$1" = ours ]; then
      mb=$(/usr/bin/time -o "$DIR/gen.time" -f '%U %S' \
        "$BIN" bench produce --brokers "$ADDR" --topic gen --acks 1 --count "$LOADGEN_RECORDS" --producers "${LOADGEN_PRODUCERS:-1}" --json --quiet \
        | python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["mb_per_s"])')
    else
      mb=$(/usr/bin/time -o "$DIR/gen.time" -f '%U %S' \
        "$PERF_DIR/examples/rdkafka_performance" -P -t gen -b "$ADDR" -s 1024 -c "$LOADGEN_RECORDS" -a 1 -X linger.ms=5 2>&1 \
        | sed -n 's/.* msgs\/s and \([0-9.]*\) MB\/s.*/\1/p' | tail -1)
    fi
    echo "$mb $(awk -v gb="$(( LOADGEN_RECORDS * 1024 ))" '{printf "%.2f", ($1 + $2) / (gb / 1e9)}' "$DIR/gen.time")"
    stop_broker; rm -rf "$DIR/data"
  }
  : > "$DIR/gen"
  for i in $(seq 1 "$REPEAT"); do
    if [ $((i % 2)) -eq 1 ]; then
      ours=$(gen_run ours); theirs=$(gen_run theirs)
    else
      theirs=$(gen_run theirs); ours=$(gen_run ours)
    fi
    # Columns: our MB/s, their MB/s, our CPU-s/GB, their CPU-s/GB.
    echo "${ours% *} ${theirs% *} ${ours#* } ${theirs#* }" >> "$DIR/gen"
  done
  log "  runnel bench produce (--producers ${LOADGEN_PRODUCERS:-1}), MB/s per run: $(cut -d' ' -f1 "$DIR/gen" | tr '\n' ' ')"
  log "  rdkafka_performance -P, MB/s per run: $(cut -d' ' -f2 "$DIR/gen" | tr '\n' ' ')"
  log "  ratio runnel/rdkafka_performance per round: $(python3 -c 'import sys; print(" ".join("%.2f" % (float(l.split()[0]) / float(l.split()[1])) for l in open(sys.argv[1]) if l.strip()))' "$DIR/gen")"
  log "  generator CPU-s per GB ($LOADGEN_RECORDS x 1,024 bytes), runnel bench per run: $(cut -d' ' -f3 "$DIR/gen" | tr '\n' ' ')"
  log "  generator CPU-s per GB, rdkafka_performance per run: $(cut -d' ' -f4 "$DIR/gen" | tr '\n' ' ')"
else
  log "  skipped: librdkafka is not built here (RUNNEL_TEST_ONLY=compat bash scripts/test.sh builds it)"
fi

fi

# --- compaction ------------------------------------------------------------------------
if want compaction; then
# Cleaner throughput: a compacted topic of COMPACT_RECORDS 1 KiB updates over
# COMPACT_KEYS keys is written with the cleaner off, then the broker restarts
# with it on; the first cleaning after a restart reads the whole log but the
# active segment (64 MiB segments here; the active one is never cleaned). The
# "log cleaned" line gives bytes read and written, elapsed time and key map size.
COMPACT_RECORDS=${COMPACT_RECORDS:-1000000}
COMPACT_KEYS=${COMPACT_KEYS:-100000}
log "## compaction: $COMPACT_RECORDS updates of 1 KiB over $COMPACT_KEYS keys, then one full cleaning"
rm -rf "$DIR/data"; start_broker "$DIR/data" --set log.cleaner.enable=false
"$BIN" topic create table --brokers "$ADDR" --partitions 1 --config cleanup.policy=compact --config segment.bytes=67108864 > /dev/null
"$BIN" bench produce --brokers "$ADDR" --topic table --keys "$COMPACT_KEYS" --count "$COMPACT_RECORDS" --acks 1 --json --quiet > /dev/null
stop_broker
log "log before cleaning: $(du -sh "$DIR/data/table-0" | cut -f1)"
start_broker "$DIR/data" --set log.cleaner.backoff.ms=100
rss_start=$(rss_kib "$BROKER_PID")
for _ in $(seq 1 1200); do grep -q 'log cleaned' "$DIR/broker.err" && break; sleep 0.5; done
line=$(grep -m1 'log cleaned' "$DIR/broker.err" || true)
field() { echo "$line" | grep -o "$1=[0-9]*" | cut -d= -f2; }
if [ -n "$line" ]; then
  log "$(python3 -c 'import sys; r, w, ms, keys, kmb = map(int, sys.argv[1:]); print("cleaner: read %.0f MB, wrote %.0f MB in %.1f s = %.0f MB/s read; key map %d keys, %.1f MiB" % (r/1e6, w/1e6, ms/1e3, r/1e6/(ms/1e3), keys, kmb/2**20))' "$(field bytes_read)" "$(field bytes_written)" "$(field elapsed_ms)" "$(field keys)" "$(field key_map_bytes)")"
  log "broker RSS at start $rss_start KiB, peak $(hwm_kib "$BROKER_PID") KiB; log after cleaning: $(du -sh "$DIR/data/table-0" | cut -f1)"
else
  log "cleaner: no cleaning finished within 600 s"
fi
stop_broker

fi

if want cleaner-latency; then
# Produce latency with and without the cleaner: the same paced acks=all load
# (5,000 records/s on another topic) while a second client keeps updating a
# compacted topic with 16 MiB segments, so the cleaner runs again and again
# when it is enabled: off, on without an I/O limit, and on with
# log.cleaner.io.max.bytes.per.second=CLEANER_IO_MAX. The three alternate run
# by run, so load from elsewhere on the machine falls on all of them alike.
CLEANER_IO_MAX=${CLEANER_IO_MAX:-60000000}
log "## produce ack latency at 5,000 records/s, acks=all, while a compacted topic takes 20,000 updates/s"
declare -A CLEANER_ARGS=(
  [off]="--set log.cleaner.enable=false"
  [unlimited]="--set log.cleaner.enable=true"
  [throttled]="--set log.cleaner.enable=true --set log.cleaner.io.max.bytes.per.second=$CLEANER_IO_MAX"
)
CLEANER_CONFIGS="off unlimited throttled"
for cfg in $CLEANER_CONFIGS; do : > "$DIR/rows-$cfg"; : > "$DIR/cleanings-$cfg"; done
for i in $(seq 1 "$REPEAT"); do
  log "  run $i: load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for cfg in $CLEANER_CONFIGS; do
    rm -rf "$DIR/data"
    # shellcheck disable=SC2086 # the arguments are words
    start_broker "$DIR/data" ${CLEANER_ARGS[$cfg]} --set log.cleaner.backoff.ms=100
    # On a shared machine a client can time out; such a run is logged and left out, not fatal.
    if ! "$BIN" topic create churn --brokers "$ADDR" --partitions 1 --config cleanup.policy=compact --config segment.bytes=16777216 > /dev/null; then
      log "  run $i, cleaner $cfg: could not create the compacted topic; run left out"
      stop_broker
      continue
    fi
    "$BIN" bench produce --brokers "$ADDR" --topic churn --keys 10000 --rate 20000 --duration $((SECS + 10)) --acks 1 --json --quiet > /dev/null &
    churn=$!
    sleep 5
    if produce_run "paced-$i" all --rate 5000 > "$DIR/row"; then
      cat "$DIR/row" >> "$DIR/rows-$cfg"
    else
      log "  run $i, cleaner $cfg: the paced producer failed; run left out"
    fi
    wait "$churn" || true
    echo "$(grep -c 'log cleaned' "$DIR/broker.err" || true)" >> "$DIR/cleanings-$cfg"
    stop_broker
  done
done
for cfg in $CLEANER_CONFIGS; do
  p99=$(awk '{print $5}' "$DIR/rows-$cfg" | python3 -c 'import statistics, sys; v = [float(x) for x in sys.stdin]; print("%.1f / %.1f" % (min(v), statistics.median(v)))')
  log "  cleaner $cfg: ack latency ms p50/p99 per run: $(awk '{printf "%s/%s ", $4, $5}' "$DIR/rows-$cfg"); p99 min / median $p99 ms; cleanings per run: $(tr '\n' ' ' < "$DIR/cleanings-$cfg")"
done
fi

# --- transactions ---------------------------------------------------------------------
# Transactional producers against the plain idempotent producer in the same
# run: each round runs the three configurations one after another, each on a
# fresh broker (default config: fsync before ack) so no run inherits the
# previous one's log or dirty pages, and the ratio is taken per round.
if want transactions; then
TXN_PRODUCERS=${TXN_PRODUCERS:-2}
log "## transactions: 1 KiB records, acks=all, ${SECS}s per run, $REPEAT rounds, 4 partitions, $TXN_PRODUCERS producers"
: > "$DIR/idem"; : > "$DIR/txn100"; : > "$DIR/txn10000"
fresh_run() { # rows file, produce_run args...
  local rows=$1; shift
  rm -rf "$DIR/data"; start_broker "$DIR/data"
  produce_run "$@" >> "$rows"
  stop_broker; rm -rf "$DIR/data"
}
for i in $(seq 1 "$REPEAT"); do
  fresh_run "$DIR/idem" idem all --partitions 4 --producers "$TXN_PRODUCERS" --idempotent
  fresh_run "$DIR/txn100" txn100 all --partitions 4 --producers "$TXN_PRODUCERS" --transactional-id bench --txn-records 100
  fresh_run "$DIR/txn10000" txn10000 all --partitions 4 --producers "$TXN_PRODUCERS" --transactional-id bench --txn-records 10000
done
log "$(stats "idempotent, no transactions" < "$DIR/idem")"
log "$(stats "transactions of 100 records" < "$DIR/txn100")"
log "$(stats "transactions of 10,000 records" < "$DIR/txn10000")"
ratios() { # file of transactional rows: records/s ratio to the idempotent row of the same round
  python3 -c '
import statistics, sys
base = [float(l.split()[0]) for l in open(sys.argv[1]) if l.strip()]
txn = [float(l.split()[0]) for l in open(sys.argv[2]) if l.strip()]
r = [t / b for t, b in zip(txn, base)]
print("min %.2f median %.2f (rounds: %s)" % (min(r), statistics.median(r), " ".join("%.2f" % x for x in r)))
' "$DIR/idem" "$1"
}
log "  throughput ratio to idempotent, transactions of 100: $(ratios "$DIR/txn100")"
log "  throughput ratio to idempotent, transactions of 10,000: $(ratios "$DIR/txn10000")"

log "## end-to-end latency, read_committed consumer, 1,000 records/s, 1 KiB, acks=all, ${SECS}s per run"
e2e_line() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); l=j["e2e_latency_ms"]; print("%s %s %s %s %s" % (j["records"], l["p50"], l["p99"], l["p999"], l["max"]))' "$1"; }
for mode in "idempotent" "txn-10" "txn-100"; do
  case $mode in
    idempotent) args=(--idempotent) ;;
    txn-10) args=(--transactional-id e2e-10 --txn-records 10) ;;
    txn-100) args=(--transactional-id e2e-100 --txn-records 100) ;;
  esac
  : > "$DIR/rows"
  for i in $(seq 1 "$REPEAT"); do
    rm -rf "$DIR/data"; start_broker "$DIR/data"
    "$BIN" bench e2e --brokers "$ADDR" --topic e2e --rate 1000 --duration "$SECS" --read-committed "${args[@]}" --json --quiet > "$DIR/e2e.json"
    e2e_line "$DIR/e2e.json" >> "$DIR/rows"
    stop_broker; rm -rf "$DIR/data"
  done
  log "  $mode: records p50/p99/p999/max ms per run: $(awk '{printf "%s: %s/%s/%s/%s; ", $1, $2, $3, $4, $5}' "$DIR/rows")"
done
fi

# --- consumer groups ---------------------------------------------------------------
# scripts/bench_groups.py starts its own broker per run (default config but
# for what a configuration names): start of 10 members over 100 partitions,
# one member leaving, synchronous offset commits; classic (range and
# cooperative-sticky) and the consumer protocol, configurations alternating.
if want groups; then
PYTHON=${PYTHON:-.venv/bin/python}
log "## consumer groups: 10 members, 100 partitions, 2,000 records/s, $REPEAT rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$PYTHON" scripts/bench_groups.py --bin "$BIN" --repeat "$REPEAT" --dir "$DIR/groups" --out "$OUT/groups-runs.jsonl" ${GROUP_CONFIGS:+--configs "$GROUP_CONFIGS"} 2> "$OUT/groups.err" | tee -a "$OUT/summary.txt"
log "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

# --- TLS and SASL_SSL ---------------------------------------------------------------
# One broker with PLAINTEXT, SSL and SASL_SSL (PLAIN) listeners and a
# certificate from a CA made here with openssl; each round produces, then
# consumes, through each listener in turn, so the ratios compare runs of the
# same round. The disk is kept out of the way (acks=1, no flush before ack).
if want tls; then
TLSDIR=$DIR/tls; mkdir -p "$TLSDIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=Runnel bench CA" \
  -keyout "$TLSDIR/ca.key" -out "$TLSDIR/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$TLSDIR/broker.key" -out "$TLSDIR/broker.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$TLSDIR/san.ext"
openssl x509 -req -in "$TLSDIR/broker.csr" -CA "$TLSDIR/ca.pem" -CAkey "$TLSDIR/ca.key" -CAcreateserial -days 2 \
  -extfile "$TLSDIR/san.ext" -out "$TLSDIR/broker.crt" 2>/dev/null
cat "$TLSDIR/broker.crt" "$TLSDIR/broker.key" > "$TLSDIR/keystore.pem"
JAAS='org.apache.kafka.common.security.plain.PlainLoginModule required user_bench="bench-secret";'
rm -rf "$DIR/data"
start_broker "$DIR/data" --set "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_SSL://127.0.0.1:0" \
  --set "ssl.keystore.location=$TLSDIR/keystore.pem" --set "listener.name.sasl_ssl.plain.sasl.jaas.config=$JAAS" \
  --set log.flush.interval.messages=9223372036854775807
listener_addr() { sed -n "s/.*listener bound listener=$1 .*addr=\([0-9.:]*\).*/\1/p" "$DIR/broker.err" | head -1; }
PLAIN_ADDR=$(listener_addr PLAINTEXT); SSL_ADDR=$(listener_addr SSL); SASL_ADDR=$(listener_addr SASL_SSL)
SSL_ARGS=(-X security.protocol=SSL -X "ssl.ca.location=$TLSDIR/ca.pem")
SASL_ARGS=(-X security.protocol=SASL_SSL -X "ssl.ca.location=$TLSDIR/ca.pem" -X sasl.mechanism=PLAIN -X sasl.username=bench -X sasl.password=bench-secret)
log "## TLS: 1 KiB records, acks=1, no flush before ack, ${SECS}s produce runs, $REPEAT rounds (PLAINTEXT $PLAIN_ADDR, SSL $SSL_ADDR, SASL_SSL $SASL_ADDR)"
: > "$DIR/tls-p-plain"; : > "$DIR/tls-p-ssl"; : > "$DIR/tls-p-sasl"
: > "$DIR/tls-c-plain"; : > "$DIR/tls-c-ssl"; : > "$DIR/tls-c-sasl"
consume_run() { # topic, records, bench args...
  local topic=$1 count=$2; shift 2
  local t0; t0=$(cpu_ticks "$BROKER_PID")
  "$BIN" bench consume --topic "$topic" --count "$count" --json --quiet "$@" > "$DIR/run.json"
  local t1; t1=$(cpu_ticks "$BROKER_PID")
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); gb=j["bytes"]/1e9; print("%.0f %.1f %.1f - -" % (j["records_per_s"], j["mb_per_s"], (int(sys.argv[2])/int(sys.argv[3]))/gb))' "$DIR/run.json" "$((t1 - t0))" "$TICKS"
}
# Each produce run starts with no dirty pages (sync, not timed): a run that
# followed another's gigabytes would otherwise pay for their writeback. The
# order of the listeners rotates from round to round.
tls_produce() { # listener
  sync
  case $1 in
    plain) ADDR=$PLAIN_ADDR produce_run "tp-$i" 1 --partitions 4 --producers 2 >> "$DIR/tls-p-plain"
           cp "$DIR/run.json" "$DIR/plain-produce.json" ;;
    ssl) ADDR=$SSL_ADDR produce_run "ts-$i" 1 --partitions 4 --producers 2 "${SSL_ARGS[@]}" >> "$DIR/tls-p-ssl" ;;
    sasl) ADDR=$SASL_ADDR produce_run "ta-$i" 1 --partitions 4 --producers 2 "${SASL_ARGS[@]}" >> "$DIR/tls-p-sasl" ;;
  esac
}
for i in $(seq 1 "$REPEAT"); do
  case $((i % 3)) in
    1) order="plain ssl sasl" ;;
    2) order="ssl sasl plain" ;;
    0) order="sasl plain ssl" ;;
  esac
  for listener in $order; do tls_produce "$listener"; done
  sync
  # Each listener reads the same records: those the plaintext run wrote this round.
  n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records"])' "$DIR/plain-produce.json")
  n=$(( n < 2000000 ? n : 2000000 ))
  consume_run "tp-$i" "$n" --brokers "$PLAIN_ADDR" >> "$DIR/tls-c-plain"
  consume_run "tp-$i" "$n" --brokers "$SSL_ADDR" "${SSL_ARGS[@]}" >> "$DIR/tls-c-ssl"
  consume_run "tp-$i" "$n" --brokers "$SASL_ADDR" "${SASL_ARGS[@]}" >> "$DIR/tls-c-sasl"
done
log "$(stats "produce PLAINTEXT" < "$DIR/tls-p-plain")"
log "$(stats "produce SSL" < "$DIR/tls-p-ssl")"
log "$(stats "produce SASL_SSL" < "$DIR/tls-p-sasl")"
log "$(stats "consume PLAINTEXT" < "$DIR/tls-c-plain")"
log "$(stats "consume SSL" < "$DIR/tls-c-ssl")"
log "$(stats "consume SASL_SSL" < "$DIR/tls-c-sasl")"
tls_ratio() { # rows of the secured listener, rows of plaintext: MB/s ratio per round
  python3 -c '
import statistics, sys
sec = [float(l.split()[1]) for l in open(sys.argv[1]) if l.strip()]
base = [float(l.split()[1]) for l in open(sys.argv[2]) if l.strip()]
r = [s / b for s, b in zip(sec, base)]
print("min %.2f median %.2f (rounds: %s)" % (min(r), statistics.median(r), " ".join("%.2f" % x for x in r)))
' "$1" "$2"
}
log "  throughput ratio to plaintext: produce SSL $(tls_ratio "$DIR/tls-p-ssl" "$DIR/tls-p-plain"); produce SASL_SSL $(tls_ratio "$DIR/tls-p-sasl" "$DIR/tls-p-plain")"
log "  throughput ratio to plaintext: consume SSL $(tls_ratio "$DIR/tls-c-ssl" "$DIR/tls-c-plain"); consume SASL_SSL $(tls_ratio "$DIR/tls-c-sasl" "$DIR/tls-c-plain")"
# Connection set-up: one client opening connections one after another for
# 5 s, each through the TLS handshake and one ApiVersions round trip (TCP
# connect plus ApiVersions for plaintext).
setup_rate() { # addr, tls?
  python3 - "$1" "$2" "$TLSDIR/ca.pem" <<'PY'
import socket, ssl, struct, sys, time
host, port = sys.argv[1].rsplit(":", 1)
use_tls = sys.argv[2] == "tls"
ctx = ssl.create_default_context(cafile=sys.argv[3])
# ApiVersions v0: api key 18, version 0, correlation id 1, client id "b".
req = struct.pack(">hhih", 18, 0, 1, 1) + b"b"
frame = struct.pack(">i", len(req)) + req
n, end = 0, time.monotonic() + 5
while time.monotonic() < end:
    s = socket.create_connection((host, int(port)))
    if use_tls:
        s = ctx.wrap_socket(s, server_hostname=host)
    s.sendall(frame)
    def read(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise SystemExit("the broker closed the connection")
            buf += chunk
        return buf
    read(struct.unpack(">i", read(4))[0])
    s.close()
    n += 1
print("%.0f" % (n / 5))
PY
}
log "  connection set-up, one client, connect + ApiVersions per connection: plaintext $(setup_rate "$PLAIN_ADDR" plain)/s, TLS $(setup_rate "$SSL_ADDR" tls)/s; broker RSS $(rss_kib "$BROKER_PID") KiB"
stop_broker
fi

rm -rf "$DIR"
log "done"
