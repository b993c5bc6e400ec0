"""The consumer group protocol (KIP-848) on Runnel with confluent-kafka
``group.protocol=consumer``: the client heartbeats with
ConsumerGroupHeartbeat, the broker computes the assignment, and partitions
move incrementally (revoked by the old owner before the new owner gets them).

The tests share one broker with ``group.consumer.heartbeat.interval.ms=500``
so reconciliation takes a fraction of a second. Exactly-once checks produce
only while the group is settled and wait for the committed offsets to reach
the end of every partition before the membership changes, so every record
must be read by exactly one member across joins and leaves.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka import ConsumerGroupType
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import RunnelBroker, _log_dir, running_broker
from runnel_helpers import wait_until

SETTINGS = {"group.consumer.heartbeat.interval.ms": "500", "group.initial.rebalance.delay.ms": "100"}
PARTITIONS = 6


@pytest.fixture(scope="module")
def kbroker(tmp_path_factory):
    """A broker for this module with a short consumer heartbeat interval."""
    with running_broker(tmp_path_factory, "consumer-protocol", SETTINGS) as b:
        yield b.bootstrap


def new_group() -> str:
    return f"kip848-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=15)


def produce(bootstrap: str, topic: str, count: int, start: int = 0, partitions: int = PARTITIONS) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        p.produce(topic, value=f"v{i}".encode(), partition=i % partitions)
    assert p.flush(30) == 0


class Member:
    """A consumer-protocol consumer polled on its own thread. It records
    when it gained and lost each partition (monotonic time) and every record
    it read; auto-commit runs every 100 ms."""

    def __init__(self, bootstrap: str, group: str, topic: str, **extra):
        config = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 100,
        }
        config.update(extra)
        self.consumer = Consumer(config)
        self.owned: set[int] = set()
        self.events: list[tuple[float, str, int]] = []
        self.records: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_assign(self, consumer, partitions):
        with self.lock:
            for p in partitions:
                self.owned.add(p.partition)
                self.events.append((time.monotonic(), "assign", p.partition))

    def _on_revoke(self, consumer, partitions):
        with self.lock:
            for p in partitions:
                self.owned.discard(p.partition)
                self.events.append((time.monotonic(), "revoke", p.partition))

    def _run(self):
        while not self.stop_flag.is_set():
            msg = self.consumer.poll(0.1)
            if msg is None or msg.error():
                continue
            with self.lock:
                self.records.append((msg.partition(), msg.offset()))

    def assignment(self) -> set[int]:
        with self.lock:
            return set(self.owned)

    def read(self) -> list[tuple[int, int]]:
        with self.lock:
            return list(self.records)

    def close(self):
        self.stop_flag.set()
        self.thread.join(10)
        self.consumer.close()


def wait_split(members, timeout: float = 20.0):
    """Waits until the members own disjoint, non-empty sets covering every partition."""

    def split():
        sets = [m.assignment() for m in members]
        union = set().union(*sets)
        disjoint = sum(len(s) for s in sets) == len(union)
        return all(sets) and disjoint and union == set(range(PARTITIONS)) and sets

    return wait_until(split, timeout=timeout, what="a split of the partitions")


def committed(bootstrap: str, group: str, topic: str, partitions: int = PARTITIONS) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])]
    result = admin.list_consumer_group_offsets(request)[group].result(timeout=10)
    return {tp.partition: tp.offset for tp in result.topic_partitions}


def wait_committed(bootstrap: str, group: str, topic: str, total: int):
    """Waits until the group's commits reach the end of every partition of `total` records."""
    per_partition = total // PARTITIONS
    wait_until(
        lambda: all(o == per_partition for o in committed(bootstrap, group, topic).values()),
        what=f"commits at offset {per_partition} on every partition",
    )


def check_no_shared_ownership(members):
    """No partition was ever owned by two members at once: for each
    partition, ownership intervals (assign .. revoke or now) never overlap."""
    intervals: dict[int, list[tuple[float, float, int]]] = {}
    now = time.monotonic()
    for index, m in enumerate(members):
        with m.lock:
            events = list(m.events)
        start: dict[int, float] = {}
        for t, kind, p in events:
            if kind == "assign":
                start[p] = t
            elif p in start:
                intervals.setdefault(p, []).append((start.pop(p), t, index))
        for p, t in start.items():
            intervals.setdefault(p, []).append((t, now, index))
    for p, spans in intervals.items():
        spans.sort()
        for (s1, e1, m1), (s2, e2, m2) in zip(spans, spans[1:]):
            assert e1 <= s2, f"partition {p} owned by members {m1} and {m2} at once"


def test_members_split_partitions_and_read_each_record_once_across_join_and_leave(kbroker):
    """Goal: two then three consumer-protocol members split six partitions
    without overlap, a joining member takes partitions only from others (each
    old member keeps a subset), and every record is read exactly once across
    a join and a leave."""
    topic, group = f"t-{uuid.uuid4().hex[:8]}", new_group()
    create_topic(kbroker, topic)
    a, b = Member(kbroker, group, topic), Member(kbroker, group, topic)
    c = None
    try:
        first = wait_split([a, b])
        assert sorted(len(s) for s in first) == [3, 3]
        produce(kbroker, topic, 60)
        wait_committed(kbroker, group, topic, 60)

        c = Member(kbroker, group, topic)
        second = wait_split([a, b, c])
        assert sorted(len(s) for s in second) == [2, 2, 2]
        assert second[0] <= first[0] and second[1] <= first[1], "old members only gave partitions away"
        produce(kbroker, topic, 60, start=60)
        wait_committed(kbroker, group, topic, 120)

        b.close()
        third = wait_split([a, c])
        assert sorted(len(s) for s in third) == [3, 3]
        assert second[0] <= third[0] and second[2] <= third[1], "remaining members kept their partitions"
        produce(kbroker, topic, 60, start=120)
        wait_committed(kbroker, group, topic, 180)

        records = a.read() + b.read() + c.read()
        assert len(records) == 180, f"{len(records)} reads of 180 records"
        assert len(set(records)) == 180, "a record was read twice"
        check_no_shared_ownership([a, b, c])
    finally:
        for m in (a, b, c):
            if m is not None and not m.stop_flag.is_set():
                m.close()


def test_successor_resumes_from_committed_offsets(kbroker):
    """Goal: offsets a member commits with its member epoch are stored, and a
    successor in the same group starts exactly after them."""
    topic, group = f"t-{uuid.uuid4().hex[:8]}", new_group()
    create_topic(kbroker, topic, 1)
    produce(kbroker, topic, 10, partitions=1)
    first = Consumer({
        "bootstrap.servers": kbroker,
        "group.id": group,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    first.subscribe([topic])
    seen = []
    deadline = time.monotonic() + 20
    while len(seen) < 10 and time.monotonic() < deadline:
        msg = first.poll(0.2)
        if msg is not None and not msg.error():
            seen.append(msg.offset())
    assert seen == list(range(10))
    result = first.commit(asynchronous=False)
    assert [(tp.offset, tp.error) for tp in result] == [(10, None)]
    first.close()

    assert committed(kbroker, group, topic, partitions=1) == {0: 10}
    produce(kbroker, topic, 5, start=10, partitions=1)
    second = Consumer({
        "bootstrap.servers": kbroker,
        "group.id": group,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
    })
    second.subscribe([topic])
    got = []
    deadline = time.monotonic() + 20
    while len(got) < 5 and time.monotonic() < deadline:
        msg = second.poll(0.2)
        if msg is not None and not msg.error():
            got.append(msg.offset())
    second.close()
    assert got == list(range(10, 15)), "the successor starts after the committed offset"


def test_admin_describes_and_lists_consumer_groups(kbroker):
    """Goal: AdminClient.describe_consumer_groups (ConsumerGroupDescribe)
    shows the members with their disjoint assignments and the group as
    Stable and of type consumer; list_consumer_groups lists it as a consumer
    group."""
    topic, group = f"t-{uuid.uuid4().hex[:8]}", new_group()
    create_topic(kbroker, topic)
    a, b = Member(kbroker, group, topic, **{"client.id": "alpha"}), Member(kbroker, group, topic)
    try:
        split = wait_split([a, b])
        admin = AdminClient({"bootstrap.servers": kbroker})

        def described():
            d = admin.describe_consumer_groups([group])[group].result(timeout=10)
            return d if d.state.name == "STABLE" else None

        desc = wait_until(described, what="a Stable description")
        assert desc.type == ConsumerGroupType.CONSUMER
        assert len(desc.members) == 2
        owned = [{tp.partition for tp in m.assignment.topic_partitions} for m in desc.members]
        assert sorted(map(sorted, owned)) == sorted(map(sorted, split))
        assert {m.client_id for m in desc.members} >= {"alpha"}
        assert all(tp.topic == topic for m in desc.members for tp in m.assignment.topic_partitions)

        listed = admin.list_consumer_groups().result(timeout=10)
        mine = [g for g in listed.valid if g.group_id == group]
        assert len(mine) == 1 and mine[0].type == ConsumerGroupType.CONSUMER, mine
    finally:
        a.close()
        b.close()


class FixedPortBroker(RunnelBroker):
    """A broker that listens on the same port across restarts, so running
    clients reconnect to it."""

    def __init__(self, *args, port: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fixed_port = port

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("--listen") + 1] = f"127.0.0.1:{self.fixed_port}"
        return cmd


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_group_survives_broker_kill_and_members_carry_on(tmp_path, tmp_path_factory):
    """Goal: a consumer group's members, epochs and assignments are stored in
    __consumer_offsets; after a SIGKILL and restart the running members
    carry on with the same member ids and partitions (no rejoin, no new
    group epoch) and read what is produced afterwards exactly once."""
    log_dir = _log_dir(tmp_path_factory)
    log_dir.mkdir(parents=True, exist_ok=True)
    b = FixedPortBroker(
        "consumer-protocol-restart",
        data_dir=tmp_path / "data",
        log_path=log_dir / f"consumer-protocol-restart-{uuid.uuid4().hex[:6]}.stderr.log",
        settings=SETTINGS,
        port=free_port(),
    )
    b.start()
    topic, group = f"t-{uuid.uuid4().hex[:8]}", new_group()
    a = m = None
    try:
        create_topic(b.bootstrap, topic)
        a, m = Member(b.bootstrap, group, topic), Member(b.bootstrap, group, topic)
        split = wait_split([a, m])
        admin = AdminClient({"bootstrap.servers": b.bootstrap})

        def stable():
            d = admin.describe_consumer_groups([group])[group].result(timeout=10)
            return d if d.state.name == "STABLE" else None

        before = wait_until(stable, what="a Stable group")
        produce(b.bootstrap, topic, 60)
        wait_committed(b.bootstrap, group, topic, 60)

        b._kill()
        b.start()
        after = wait_until(stable, what="the group Stable after the restart")
        assert sorted(x.member_id for x in after.members) == sorted(x.member_id for x in before.members)
        produce(b.bootstrap, topic, 60, start=60)
        wait_committed(b.bootstrap, group, topic, 120)
        assert [a.assignment(), m.assignment()] == split, "members kept their partitions"
        records = a.read() + m.read()
        assert len(records) == 120 and len(set(records)) == 120, f"{len(records)} reads of 120 records"
        final = admin.describe_consumer_groups([group])[group].result(timeout=10)
        assert sorted(x.member_id for x in final.members) == sorted(x.member_id for x in before.members)
        # The restarted broker restored the group, and nobody had to rejoin.
        second_run = b.log_path.read_text().split("==== test harness: starting")[-1]
        assert "consumer group restored" in second_run
        assert "consumer group member joined" not in second_run, "a member rejoined after the restart"
    finally:
        for member in (a, m):
            if member is not None:
                member.close()
        b.stop(signal.SIGTERM)


def test_regex_subscription_is_resolved_by_the_broker(kbroker, tmp_path_factory):
    """Goal: a regex subscription goes to the broker (subscribed_topic_regex),
    which assigns the partitions of every matching topic, and of a matching
    topic created later."""
    prefix = f"rx{uuid.uuid4().hex[:6]}"
    for name, partitions in ((f"{prefix}-a", 2), (f"{prefix}-b", 1), (f"other{prefix}", 1)):
        create_topic(kbroker, name, partitions)
    c = Consumer({
        "bootstrap.servers": kbroker,
        "group.id": new_group(),
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
    })
    owned: set[tuple[str, int]] = set()
    lock = threading.Lock()

    def on_assign(consumer, partitions):
        with lock:
            owned.update((p.topic, p.partition) for p in partitions)

    c.subscribe([f"^{prefix}-.*"], on_assign=on_assign)
    try:
        def assigned(expected):
            def check():
                c.poll(0.1)
                with lock:
                    return owned == expected
            return check

        first = {(f"{prefix}-a", 0), (f"{prefix}-a", 1), (f"{prefix}-b", 0)}
        wait_until(assigned(first), timeout=20, what="the matching topics' partitions")
        create_topic(kbroker, f"{prefix}-c", 1)
        wait_until(assigned(first | {(f"{prefix}-c", 0)}), timeout=20, what="the new matching topic")
        # The client sent the regex itself; the broker resolved it.
        log = (_log_dir(tmp_path_factory) / "consumer-protocol-broker.stderr.log").read_text()
        joined = [line for line in log.splitlines() if "member joined" in line and f"^{prefix}-.*" in line]
        assert joined and "regex=Some(" in joined[0], joined
    finally:
        c.close()


def test_static_member_restart_keeps_its_partitions(kbroker):
    """Goal: a static member (group.instance.id) that closes and comes back
    within the session gets its partitions back, and the other member is
    not disturbed (no revocation, no new assignment)."""
    topic, group = f"t-{uuid.uuid4().hex[:8]}", new_group()
    create_topic(kbroker, topic)
    other = Member(kbroker, group, topic)
    static = Member(kbroker, group, topic, **{"group.instance.id": "static-1"})
    successor = None
    try:
        split = wait_split([other, static])
        events_before = len(other.events)
        static.close()
        successor = Member(kbroker, group, topic, **{"group.instance.id": "static-1"})
        wait_until(lambda: successor.assignment() == split[1], timeout=20, what="the successor's partitions")
        time.sleep(1.5)  # three heartbeat intervals: any rebalance would show
        assert other.assignment() == split[0]
        assert len(other.events) == events_before, f"the other member was disturbed: {other.events[events_before:]}"
    finally:
        other.close()
        if successor is not None:
            successor.close()
