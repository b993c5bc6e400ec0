#!/usr/bin/env python3
"""Runnel's consumer group benchmark (the `groups` section of scripts/bench.sh).

For each group configuration, on a fresh broker (fresh data directory,
default config unless a configuration says otherwise) with a 100-partition
topic that a producer keeps writing to (one record per partition every
TICK_S seconds), it measures:

* start: ten consumers, each a librdkafka client in its own process, join
  one group at the same instant. Reported: the time to the first
  assignment, the time until every partition has been consumed by some
  member, and the time until the group has settled (every partition has
  its final owner, balanced, and that owner has consumed from it).
* leave: one member calls close(). Reported: close() duration, the time
  from the close until every partition it owned has been consumed by
  another member, the longest gap in consumption of the other partitions
  while that happens (against the longest gap in the seconds before the
  close), and how many of the other nine members had partitions revoked.
* commits: the producer stops; one member, then all nine remaining members
  at once, make synchronous OffsetCommits (one partition each) for
  COMMIT_S seconds. Reported: commits per second (in total).

Processes share CLOCK_MONOTONIC, so their timestamps compare. Every number
is measured; a phase that does not complete within its timeout is reported
as a timeout, not left out silently.

Configurations: classic range (eager), classic cooperative-sticky, the
consumer protocol at the broker's default heartbeat interval (500 ms) and at
Kafka's 5 s; `--configs consumer-spread` starts consumer-protocol members
50 ms apart (`consumer-spread-hb5000`: 0.5 s apart at 5 s), so their
heartbeats are out of phase.

Usage: bench_groups.py --bin target/release/runnel [--repeat 3] [--out FILE] [--configs "..."]
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

PARTITIONS = 100
MEMBERS = 10
LEAVER = 5  # index of the member that leaves (not the first, the classic leader)
TICK_S = 0.05  # one record per partition per tick: 2,000 records/s in all
PREFILL = 5  # records per partition before the consumers start
BASELINE_S = 3.0  # steady consumption before the leave, for the gap baseline
AFTER_S = 2.0  # consumption kept after the rebalance settles
COMMIT_S = 3.0
START_TIMEOUT_S = 90.0
LEAVE_TIMEOUT_S = 60.0

# name -> (consumer config, broker --set options, seconds between member starts)
CONFIGS: dict[str, tuple[dict, dict, float]] = {
    "classic-range": ({"group.protocol": "classic"}, {}, 0.0),
    "classic-cooperative-sticky": (
        {"group.protocol": "classic", "partition.assignment.strategy": "cooperative-sticky"},
        {},
        0.0,
    ),
    # The broker's default heartbeat interval (Runnel: 500 ms) and Kafka's 5 s.
    "consumer": ({"group.protocol": "consumer"}, {}, 0.0),
    "consumer-hb5000": ({"group.protocol": "consumer"}, {"group.consumer.heartbeat.interval.ms": "5000"}, 0.0),
    # Members started 50 ms apart heartbeat spread over the default 500 ms
    # interval, as in a group whose members came up at different times; the
    # -hb5000 variant starts them 0.5 s apart over a 5 s interval (not in the
    # default set; their start times include the staggering).
    "consumer-spread": ({"group.protocol": "consumer"}, {}, 0.05),
    "consumer-spread-hb5000": (
        {"group.protocol": "consumer"},
        {"group.consumer.heartbeat.interval.ms": "5000"},
        0.5,
    ),
}
DEFAULT_CONFIGS = "classic-range classic-cooperative-sticky consumer consumer-hb5000"


# --- broker -----------------------------------------------------------------


class Broker:
    """One `runnel serve` on loopback with its own data directory."""

    def __init__(self, binary: str, data_dir: Path, settings: dict):
        self.data_dir = data_dir
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        cmd = [binary, "serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data-dir", str(data_dir)]
        for key, value in settings.items():
            cmd += ["--set", f"{key}={value}"]
        self.log = open(data_dir.parent / "broker.err", "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline().strip()
        m = re.match(r"^runnel listening on (127\.0\.0\.1:\d+)$", line)
        if not m:
            self.stop()
            raise RuntimeError(f"broker did not start: {line!r}")
        self.bootstrap = m.group(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


# --- a member (runs in its own process) ----------------------------------------


def member_main(idx, bootstrap, topic, group, extra, delay, start_evt, conn, events, records_from) -> None:
    """One consumer: waits for the start, then consumes and reports assignment
    changes and the first record of each partition since its assignment on
    `events`; obeys commands on `conn` ("leave", ("commit", at, secs), "stop")."""
    from confluent_kafka import Consumer, TopicPartition

    start_evt.wait()
    time.sleep(delay)
    owned: set[int] = set()
    seen: set[int] = set()  # owned partitions consumed since assigned
    positions: dict[int, int] = {}
    records: list[tuple[int, float]] = []

    def on_assign(_c, parts):
        t = time.monotonic()
        ps = [p.partition for p in parts]
        owned.update(ps)
        seen.difference_update(ps)
        events.put(("assign", idx, ps, t))

    def on_revoke(_c, parts, kind="revoke"):
        t = time.monotonic()
        ps = [p.partition for p in parts]
        owned.difference_update(ps)
        seen.difference_update(ps)
        events.put((kind, idx, ps, t))

    config = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
    config.update(extra)
    consumer = Consumer(config)
    consumer.subscribe(
        [topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=lambda c, p: on_revoke(c, p, "lost")
    )
    closed = False
    while True:
        if conn.poll():
            cmd = conn.recv()
            if cmd == "stop":
                break
            if cmd == "leave":
                t = time.monotonic()
                events.put(("leaving", idx, sorted(owned), t))
                consumer.close()
                closed = True
                events.put(("closed", idx, [], time.monotonic()))
                continue
            if cmd[0] == "commit":
                conn.send(commit_loop(consumer, topic, sorted(owned), positions, cmd[1], cmd[2], TopicPartition))
                continue
        if closed:
            time.sleep(0.05)
            continue
        for msg in consumer.consume(num_messages=1000, timeout=0.05):
            if msg.error():
                continue
            t = time.monotonic()
            p = msg.partition()
            positions[p] = msg.offset() + 1
            records.append((p, t))
            if p in owned and p not in seen:
                seen.add(p)
                events.put(("first", idx, [p], t))
    if not closed:
        consumer.close()
    events.cancel_join_thread()  # the parent stops reading events before the members exit
    t_from = records_from.value
    conn.send([r for r in records if r[1] >= t_from])


def commit_loop(consumer, topic, owned, positions, at, secs, TopicPartition) -> dict:
    """Synchronous commits of one partition offset each, cycling through the
    owned partitions, from monotonic time `at` for `secs` seconds."""
    while time.monotonic() < at:
        time.sleep(0.001)
    end = at + secs
    count = errors = 0
    latencies = []
    parts = owned or [0]
    while True:
        t = time.monotonic()
        if t >= end:
            break
        p = parts[count % len(parts)]
        try:
            consumer.commit(offsets=[TopicPartition(topic, p, positions.get(p, 0))], asynchronous=False)
            count += 1
            latencies.append(time.monotonic() - t)
        except Exception:  # noqa: BLE001 - a failed commit is counted, not fatal
            errors += 1
    return {"commits": count, "errors": errors, "secs": secs, "latencies": latencies}


# --- the coordinator side ----------------------------------------------------


class Group:
    """The parent's live view of the members, built from their events."""

    def __init__(self):
        self.owned = {i: set() for i in range(MEMBERS)}
        self.seen = {i: set() for i in range(MEMBERS)}
        self.alive = set(range(MEMBERS))
        self.log: list[tuple] = []

    def apply(self, ev) -> None:
        kind, idx, parts, _t = ev
        self.log.append(ev)
        if kind == "assign":
            self.owned[idx].update(parts)
            self.seen[idx].difference_update(parts)
        elif kind in ("revoke", "lost"):
            self.owned[idx].difference_update(parts)
            self.seen[idx].difference_update(parts)
        elif kind == "first":
            self.seen[idx].update(parts)
        elif kind == "leaving":
            self.alive.discard(idx)

    def settled(self) -> bool:
        """Every partition owned by exactly one live member, balanced, and
        consumed by its owner since it was assigned."""
        sizes = [len(self.owned[i]) for i in self.alive]
        union = set().union(*(self.owned[i] for i in self.alive))
        return (
            sum(sizes) == PARTITIONS
            and len(union) == PARTITIONS
            and min(sizes) > 0
            and max(sizes) - min(sizes) <= 1
            and all(self.owned[i] <= self.seen[i] for i in self.alive)
        )


def drain_until(events, group: Group, done, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            group.apply(events.get(timeout=0.05))
        except queue.Empty:
            pass
        if done():
            return True
    return False


def drain_for(events, group: Group, secs: float) -> None:
    drain_until(events, group, lambda: False, secs)


class Load(threading.Thread):
    """Keeps one record per partition per tick flowing into the topic."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.topic = topic
        self.stop_flag = threading.Event()

    def send_round(self) -> None:
        for p in range(PARTITIONS):
            self.producer.produce(self.topic, value=b"x" * 100, partition=p)
        self.producer.poll(0)

    def run(self) -> None:
        next_t = time.monotonic()
        while not self.stop_flag.is_set():
            self.send_round()
            next_t += TICK_S
            time.sleep(max(0.0, next_t - time.monotonic()))
        self.producer.flush(30)


def first_consumed_after(log, partitions, after: float, exclude=None) -> dict[int, float]:
    """partition -> time of its first `first` event after `after` (by a member
    other than `exclude`)."""
    out: dict[int, float] = {}
    for kind, idx, parts, t in sorted(log, key=lambda e: e[3]):
        if kind == "first" and t > after and idx != exclude:
            for p in parts:
                if p in partitions and p not in out:
                    out[p] = t
    return out


def settle_time(log, upto: float, after: float) -> float | None:
    """Latest over partitions of: the first record its final owner (as of
    `upto`) consumed after its last assignment. None if incomplete."""
    owner: dict[int, tuple[int, float]] = {}
    for kind, idx, parts, t in sorted(log, key=lambda e: e[3]):
        if t > upto:
            break
        for p in parts:
            if kind == "assign":
                owner[p] = (idx, t)
            elif kind in ("revoke", "lost") and owner.get(p, (None,))[0] == idx:
                del owner[p]
    if len(owner) < PARTITIONS:
        return None
    latest = after
    for p, (idx, t_assign) in owner.items():
        firsts = [t for k, i, ps, t in log if k == "first" and i == idx and p in ps and t >= t_assign and t <= upto]
        if not firsts:
            return None
        latest = max(latest, min(firsts))
    return latest


def longest_gap(times: list[float], lo: float, hi: float, ending_after_lo: bool) -> float:
    """Longest interval between consecutive times of one partition: with
    `ending_after_lo`, those that end after `lo` and start before `hi` (the
    rebalance window, the interval running at `lo` included); otherwise those
    that lie within [lo, hi] (the baseline before the close)."""
    gap = 0.0
    for a, b in zip(times, times[1:]):
        inside = (b > lo and a < hi) if ending_after_lo else (a >= lo and b <= hi)
        if inside:
            gap = max(gap, b - a)
    return gap


def one_run(binary: str, work: Path, name: str) -> dict:
    consumer_conf, broker_settings, stagger = CONFIGS[name]
    broker = Broker(binary, work / "data", broker_settings)
    ctx = mp.get_context("spawn")
    procs, conns = [], []
    load = None
    result: dict = {"config": name, "load_average": os.getloadavg()[0]}
    try:
        from confluent_kafka.admin import AdminClient, NewTopic

        topic = "groups-bench"
        group_id = f"bench-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(timeout=30)
        del admin
        load = Load(broker.bootstrap, topic)
        for _ in range(PREFILL):
            load.send_round()
        load.producer.flush(30)

        start_evt = ctx.Event()
        events = ctx.Queue()
        records_from = ctx.Value("d", 0.0)
        for i in range(MEMBERS):
            parent, child = ctx.Pipe()
            p = ctx.Process(
                target=member_main,
                args=(i, broker.bootstrap, topic, group_id, consumer_conf, i * stagger, start_evt, child, events, records_from),
                daemon=True,
            )
            p.start()
            procs.append(p)
            conns.append(parent)
        time.sleep(3.0)  # the interpreters import confluent_kafka before the clock starts
        load.start()
        group = Group()

        # Start: ten members at once.
        t0 = time.monotonic()
        start_evt.set()
        ok = drain_until(events, group, group.settled, START_TIMEOUT_S)
        t_settled_live = time.monotonic()
        if not ok:
            result["error"] = "start did not settle within %.0f s" % START_TIMEOUT_S
            return result
        drain_for(events, group, BASELINE_S)
        assigns = [t for k, _i, _p, t in group.log if k == "assign"]
        all_consumed = first_consumed_after(group.log, set(range(PARTITIONS)), t0)
        settled = settle_time(group.log, t_settled_live, t0)
        result["start"] = {
            "first_assignment_s": min(assigns) - t0,
            "all_partitions_consumed_s": max(all_consumed.values()) - t0 if len(all_consumed) == PARTITIONS else None,
            "settled_s": settled - t0 if settled else None,
            "assignment_changes": len(assigns),
        }

        # Leave: one member closes.
        records_from.value = time.monotonic() - BASELINE_S
        conns[LEAVER].send("leave")
        ok = drain_until(
            events, group, lambda: LEAVER not in group.alive and group.settled(), LEAVE_TIMEOUT_S
        )
        t_rebalanced_live = time.monotonic()
        if not ok:
            result["error"] = "leave did not settle within %.0f s" % LEAVE_TIMEOUT_S
        drain_for(events, group, AFTER_S)
        leaving = next(e for e in group.log if e[0] == "leaving")
        t_close, lost = leaving[3], set(leaving[2])
        closed = [t for k, i, _p, t in group.log if k == "closed" and i == LEAVER]
        regained = first_consumed_after(group.log, lost, t_close, exclude=LEAVER)
        revoked_members = {
            i for k, i, _p, t in group.log if k in ("revoke", "lost") and t > t_close and i != LEAVER
        }
        settled = settle_time(group.log, t_rebalanced_live, t_close)
        result["leave"] = {
            "leaver_partitions": len(lost),
            "close_s": closed[0] - t_close if closed else None,
            "partitions_back_s": max(regained.values()) - t_close if len(regained) == len(lost) and lost else None,
            "first_partition_back_s": min(regained.values()) - t_close if regained else None,
            "settled_s": settled - t_close if settled else None,
            "other_members_revoked": len(revoked_members),
        }

        # Commits: the producer stops; one member, then nine at once.
        load.stop_flag.set()
        load.join(60)
        drain_for(events, group, 1.0)
        commits = {}
        for label, who in (("1", [0]), ("9", sorted(group.alive))):
            at = time.monotonic() + 0.5
            for i in who:
                conns[i].send(("commit", at, COMMIT_S))
            rows = [conns[i].recv() for i in who]
            lat = sorted(x for r in rows for x in r["latencies"])
            commits[label] = {
                "members": len(who),
                "commits_per_s": sum(r["commits"] for r in rows) / COMMIT_S,
                "errors": sum(r["errors"] for r in rows),
                "latency_ms_p50": 1000 * lat[len(lat) // 2] if lat else None,
                "latency_ms_p99": 1000 * lat[int(len(lat) * 0.99)] if lat else None,
            }
        result["commits"] = commits

        # Gaps: consumption times of the partitions the leaver did not own.
        for c in conns:
            c.send("stop")
        per_partition: dict[int, list[float]] = {}
        for c in conns:
            for p, t in c.recv():
                per_partition.setdefault(p, []).append(t)
        others = [p for p in range(PARTITIONS) if p not in lost]
        t_end = t_rebalanced_live
        before = [longest_gap(sorted(per_partition.get(p, [])), t_close - BASELINE_S, t_close, False) for p in others]
        during = [longest_gap(sorted(per_partition.get(p, [])), t_close, t_end, True) for p in others]
        # The maximum shows the worst partition; the median over partitions
        # tells a group-wide pause (every partition waits) from one member's
        # process not getting the CPU for a moment on a loaded machine.
        result["leave"]["others_max_gap_before_s"] = max(before)
        result["leave"]["others_max_gap_during_s"] = max(during)
        result["leave"]["others_median_gap_before_s"] = statistics.median(before)
        result["leave"]["others_median_gap_during_s"] = statistics.median(during)
        return result
    finally:
        if load is not None:
            load.stop_flag.set()
            if load.is_alive():
                load.join(30)
            load.producer = None
        load = None
        gc.collect()  # destroys the clients before their broker goes
        for p in procs:
            p.join(20)
            if p.is_alive():
                p.terminate()
                p.join(5)
        broker.stop()


# --- report --------------------------------------------------------------------


def fmt(values: list, scale: float = 1.0, digits: int = 2) -> str:
    vals = [v * scale for v in values if v is not None]
    missing = len(values) - len(vals)
    if not vals:
        return "n/a"
    s = f"min {min(vals):.{digits}f} median {statistics.median(vals):.{digits}f} (runs: " + " ".join(
        f"{v:.{digits}f}" for v in vals
    ) + ")"
    return s + (f", {missing} incomplete" if missing else "")


def report(runs: list[dict]) -> list[str]:
    lines = []
    for name in CONFIGS:
        rs = [r for r in runs if r["config"] == name]
        if not rs:
            continue
        ok = [r for r in rs if "leave" in r]
        conf, settings, stagger = CONFIGS[name]
        lines.append(
            f"{name} (consumer {conf}, broker {settings or 'defaults'}, members started {stagger} s apart): {len(rs)} runs"
        )
        for r in rs:
            if "error" in r:
                lines.append(f"  run failed: {r['error']}")
        st = [r["start"] for r in rs if "start" in r]
        lines.append(f"  start, first assignment s: {fmt([s['first_assignment_s'] for s in st])}")
        lines.append(f"  start, all 100 partitions consumed s: {fmt([s['all_partitions_consumed_s'] for s in st])}")
        lines.append(f"  start, settled (10 members, balanced, each consumed) s: {fmt([s['settled_s'] for s in st])}")
        lv = [r["leave"] for r in ok]
        lines.append(f"  leave, close() s: {fmt([x['close_s'] for x in lv])}")
        lines.append(f"  leave, leaver's partitions consumed again s: {fmt([x['partitions_back_s'] for x in lv])}")
        lines.append(f"  leave, group settled again s: {fmt([x['settled_s'] for x in lv])}")
        for agg in ("max", "median"):
            lines.append(
                f"  leave, longest gap per other partition ({agg} over the 90) ms:"
                f" during the rebalance {fmt([x.get(f'others_{agg}_gap_during_s') for x in lv], 1000, 0)};"
                f" in the {BASELINE_S:.0f} s before the close {fmt([x.get(f'others_{agg}_gap_before_s') for x in lv], 1000, 0)}"
            )
        lines.append(f"  leave, other members with partitions revoked: {[x['other_members_revoked'] for x in lv]}")
        cm = [r["commits"] for r in rs if "commits" in r]
        for label in ("1", "9"):
            lines.append(
                f"  sync commits/s, {label} member(s): {fmt([c[label]['commits_per_s'] for c in cm], 1, 0)}"
                f"; p50/p99 ms per run: {' '.join('%.1f/%.1f' % (c[label]['latency_ms_p50'] or 0, c[label]['latency_ms_p99'] or 0) for c in cm)}"
                f"; errors {sum(c[label]['errors'] for c in cm)}"
            )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the runnel binary")
    ap.add_argument("--repeat", type=int, default=int(os.environ.get("REPEAT", "3")))
    ap.add_argument("--dir", default="/tmp/runnel-bench-groups", help="where the broker's data goes")
    ap.add_argument("--out", help="file for one JSON line per run")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"configurations to run, of: {' '.join(CONFIGS)}")
    args = ap.parse_args()
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    names = args.configs.split()
    runs = []
    # Configurations alternate run by run, so load from elsewhere on the
    # machine falls on all of them alike.
    for i in range(args.repeat):
        for name in names:
            print(f"# round {i + 1}, {name}, load average {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
            try:
                r = one_run(args.bin, work, name)
            except Exception as e:  # noqa: BLE001 - one failed run is reported, the rest go on
                r = {"config": name, "error": repr(e)}
            r["round"] = i + 1
            runs.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(r) + "\n")
    print("\n".join(report(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
