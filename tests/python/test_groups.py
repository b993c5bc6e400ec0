"""Consumer groups on Runnel with real clients: confluent-kafka (classic
protocol), kafka-python and aiokafka.

Most tests share one broker started for this module with
``group.initial.rebalance.delay.ms=100`` so rebalances are quick; the tests
of the default delay and of broker restarts start their own. Consumers use
``session.timeout.ms=6000``, the broker's smallest allowed value.

Exactly-once checks wait until the group is stable with every member
assigned before producing, so no rebalance happens while records are read:
then every record must be read by exactly one member.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka import ConsumerGroupTopicPartitions

from conftest import running_broker
from runnel_helpers import wait_until

SESSION_MS = 6000
FAST_SETTINGS = {"group.initial.rebalance.delay.ms": "100", "num.partitions": "4"}

# Kafka error codes.
OFFSET_METADATA_TOO_LARGE = 12
INVALID_TOPIC_EXCEPTION = 17
ILLEGAL_GENERATION = 22
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
GROUP_ID_NOT_FOUND = 69
GROUP_SUBSCRIBED_TO_TOPIC = 86


@pytest.fixture(scope="module")
def gbroker(tmp_path_factory):
    """A broker for this module with a short initial rebalance delay."""
    with running_broker(tmp_path_factory, "groups", FAST_SETTINGS) as b:
        yield b.bootstrap


def new_group() -> str:
    return f"group-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=15)


def produce(bootstrap: str, topic: str, count: int, partitions: int, start: int = 0) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        p.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % partitions)
    assert p.flush(30) == 0


def consumer_config(bootstrap: str, group: str, **extra) -> dict:
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.protocol": "classic",
        "auto.offset.reset": "earliest",
        "session.timeout.ms": SESSION_MS,
        "heartbeat.interval.ms": 500,
        "enable.auto.commit": False,
    }
    config.update(extra)
    return config


class PollingMember:
    """A confluent-kafka consumer polled on its own thread, recording its
    assignment, revocations and every record it reads."""

    def __init__(self, bootstrap: str, group: str, topic: str, **extra):
        self.consumer = Consumer(consumer_config(bootstrap, group, **extra))
        self.cooperative = extra.get("partition.assignment.strategy") == "cooperative-sticky"
        self.assigned: set[int] = set()
        self.revocations: list[set[int]] = []
        self.records: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_assign(self, consumer, partitions):
        with self.lock:
            if self.cooperative:
                self.assigned |= {p.partition for p in partitions}
            else:
                self.assigned = {p.partition for p in partitions}

    def _on_revoke(self, consumer, partitions):
        with self.lock:
            revoked = {p.partition for p in partitions}
            self.revocations.append(revoked)
            self.assigned -= revoked

    def _run(self):
        while not self.stop_flag.is_set():
            msg = self.consumer.poll(0.1)
            if msg is None or msg.error():
                continue
            with self.lock:
                self.records.append((msg.partition(), msg.offset()))

    def assignment(self) -> set[int]:
        with self.lock:
            return set(self.assigned)

    def close(self):
        self.stop_flag.set()
        self.thread.join(10)
        self.consumer.close()

    def stop_polling(self):
        """Stops polling without closing (the member stays in the group)."""
        self.stop_flag.set()
        self.thread.join(10)


def wait_stable(members, partitions: int, timeout: float = 30.0):
    """Waits until the members' assignments partition 0..partitions-1 exactly, none empty."""

    def split():
        sets = [m.assignment() for m in members]
        union = set().union(*sets)
        disjoint = sum(len(s) for s in sets) == len(union)
        return all(sets) and disjoint and union == set(range(partitions)) and sets

    return wait_until(split, timeout=timeout, what="a stable split of the partitions")


@pytest.mark.parametrize("members", [2, 3])
def test_confluent_members_split_partitions_and_read_each_record_once(gbroker, unique_topic, members):
    partitions, count = 6, 300
    create_topic(gbroker, unique_topic, partitions)
    group = new_group()
    consumers = [PollingMember(gbroker, group, unique_topic) for _ in range(members)]
    try:
        wait_stable(consumers, partitions)
        produce(gbroker, unique_topic, count, partitions)
        wait_until(lambda: sum(len(c.records) for c in consumers) >= count, what="all records read")
        time.sleep(0.5)
        all_records = [r for c in consumers for r in c.records]
        assert len(all_records) == count, "a record was read twice"
        assert len(set(all_records)) == count
        for c in consumers:
            assert {p for p, _ in c.records} <= c.assignment(), "a member read a partition it does not own"
    finally:
        for c in consumers:
            c.close()


def test_closing_member_triggers_rebalance(gbroker, unique_topic):
    partitions = 4
    create_topic(gbroker, unique_topic, partitions)
    group = new_group()
    a = PollingMember(gbroker, group, unique_topic)
    b = PollingMember(gbroker, group, unique_topic)
    try:
        wait_stable([a, b], partitions)
        b.close()
        wait_until(lambda: a.assignment() == set(range(partitions)), what="the remaining member owning all")
        admin = AdminClient({"bootstrap.servers": gbroker})
        desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
        assert len(desc.members) == 1
        owned = [tp.partition for m in desc.members for tp in m.assignment.topic_partitions]
        assert sorted(owned) == list(range(partitions)), "every partition is owned by exactly one member"
    finally:
        a.close()


CHILD_CONSUMER = r"""
import json, sys
from confluent_kafka import Consumer
bootstrap, group, topic = sys.argv[1:4]
extra = json.loads(sys.argv[4])
conf = {"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "classic",
        "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
        "enable.auto.commit": False}
conf.update(extra)
c = Consumer(conf)
def on_assign(consumer, partitions):
    print(json.dumps(sorted(p.partition for p in partitions)), flush=True)
c.subscribe([topic], on_assign=on_assign)
while True:
    c.poll(0.1)
"""


def start_child(bootstrap: str, group: str, topic: str, **extra) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD_CONSUMER, bootstrap, group, topic, json.dumps(extra)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def read_assignment(proc: subprocess.Popen, timeout: float = 30.0) -> list[int]:
    """The next non-empty assignment line the child prints."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("child consumer exited")
        parts = json.loads(line)
        if parts:
            return parts
    raise AssertionError("no assignment from the child consumer")


def test_killed_member_is_removed_after_session_timeout(gbroker, unique_topic):
    partitions = 4
    create_topic(gbroker, unique_topic, partitions)
    group = new_group()
    child = start_child(gbroker, group, unique_topic)
    a = None
    try:
        read_assignment(child)
        a = PollingMember(gbroker, group, unique_topic)
        wait_until(lambda: a.assignment() and len(a.assignment()) < partitions, what="a split with the child")
        killed_at = time.monotonic()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        wait_until(lambda: a.assignment() == set(range(partitions)), timeout=30, what="partitions moving")
        elapsed = time.monotonic() - killed_at
        # The dead member keeps its partitions until its session expires.
        assert elapsed >= SESSION_MS / 1000 - 1.5, f"partitions moved after {elapsed:.1f}s"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if a:
            a.close()


def test_cooperative_sticky_keeps_unaffected_partitions(gbroker, unique_topic):
    partitions = 6
    create_topic(gbroker, unique_topic, partitions)
    group = new_group()
    extra = {"partition.assignment.strategy": "cooperative-sticky"}
    a = PollingMember(gbroker, group, unique_topic, **extra)
    b = None
    try:
        wait_until(lambda: a.assignment() == set(range(partitions)), what="the first member owning all")
        b = PollingMember(gbroker, group, unique_topic, **extra)
        sets = wait_stable([a, b], partitions)
        revoked = set().union(*a.revocations)
        assert revoked and len(revoked) < partitions, f"revocations of the first member: {a.revocations}"
        assert revoked == sets[1], "only the partitions that moved were revoked"
        assert not b.revocations
    finally:
        for c in (a, b):
            if c:
                c.close()


def test_static_member_restart_keeps_assignment_without_rebalance(gbroker, unique_topic):
    partitions = 4
    create_topic(gbroker, unique_topic, partitions)
    group = new_group()
    a = PollingMember(gbroker, group, unique_topic, **{"group.instance.id": "static-a"})
    b = PollingMember(gbroker, group, unique_topic, **{"group.instance.id": "static-b"})
    a2 = None
    try:
        sets = wait_stable([a, b], partitions)
        before_a = sets[0]
        revocations_b = len(b.revocations)
        # A static member leaves no LeaveGroup behind: its process just stops.
        a.close()
        a2 = PollingMember(gbroker, group, unique_topic, **{"group.instance.id": "static-a"})
        wait_until(lambda: a2.assignment(), what="the restarted member's assignment")
        assert a2.assignment() == before_a
        time.sleep(1)
        assert len(b.revocations) == revocations_b, "the other member was revoked"
        assert b.assignment() == sets[1]
    finally:
        for c in (a2, b):
            if c:
                c.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def test_auto_commit(gbroker, unique_topic):
    create_topic(gbroker, unique_topic, 2)
    produce(gbroker, unique_topic, 20, 2)
    group = new_group()
    c = Consumer(consumer_config(gbroker, group, **{"enable.auto.commit": True, "auto.commit.interval.ms": 200}))
    c.subscribe([unique_topic])
    read = 0
    deadline = time.monotonic() + 30
    while read < 20 and time.monotonic() < deadline:
        msg = c.poll(0.2)
        if msg is not None and not msg.error():
            read += 1
    assert read == 20
    wait_until(lambda: committed(gbroker, group, unique_topic, 2) == {0: 10, 1: 10}, what="auto-committed offsets")
    c.close()


def test_manual_commit_with_metadata(gbroker, unique_topic):
    create_topic(gbroker, unique_topic, 1)
    produce(gbroker, unique_topic, 20, 1)
    group = new_group()
    c = Consumer(consumer_config(gbroker, group))
    c.subscribe([unique_topic])
    last = None
    while last is None or last.offset() < 9:
        msg = c.poll(1.0)
        if msg is not None and not msg.error():
            last = msg
    c.commit(message=last, asynchronous=False)
    assert committed(gbroker, group, unique_topic, 1) == {0: 10}
    tp = TopicPartition(unique_topic, 0, 12, metadata="checkpoint 12")
    c.commit(offsets=[tp], asynchronous=False)
    got = c.committed([TopicPartition(unique_topic, 0)], timeout=10)[0]
    assert (got.offset, got.metadata) == (12, "checkpoint 12")
    c.close()


def consume_n(bootstrap: str, group: str, topic: str, n: int) -> list[int]:
    """Reads n records with a fresh member, commits after the last one, closes."""
    c = Consumer(consumer_config(bootstrap, group))
    c.subscribe([topic])
    offsets: list[int] = []
    deadline = time.monotonic() + 30
    last = None
    while len(offsets) < n and time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is not None and not msg.error():
            offsets.append(msg.offset())
            last = msg
    assert len(offsets) == n, f"read {offsets}"
    c.commit(message=last, asynchronous=False)
    c.close()
    return offsets


def test_committed_offsets_survive_consumer_restart_and_broker_kill(broker_factory, unique_topic):
    b = broker_factory(settings=FAST_SETTINGS)
    create_topic(b.bootstrap, unique_topic, 1)
    produce(b.bootstrap, unique_topic, 30, 1)
    group = new_group()
    assert consume_n(b.bootstrap, group, unique_topic, 12) == list(range(12))
    # A new member resumes after the commit.
    assert consume_n(b.bootstrap, group, unique_topic, 3) == [12, 13, 14]
    b._kill()  # SIGKILL: no clean shutdown
    b2 = broker_factory(settings=FAST_SETTINGS, data_dir=b.data_dir)
    assert committed(b2.bootstrap, group, unique_topic, 1) == {0: 15}
    assert consume_n(b2.bootstrap, group, unique_topic, 2) == [15, 16]


def test_admin_list_describe_offsets_alter_delete(gbroker, unique_topic):
    partitions = 2
    create_topic(gbroker, unique_topic, partitions)
    produce(gbroker, unique_topic, 10, partitions)
    group = new_group()
    admin = AdminClient({"bootstrap.servers": gbroker})
    m = PollingMember(gbroker, group, unique_topic, **{"client.id": "admin-test-client"})
    try:
        wait_until(lambda: m.assignment() == {0, 1}, what="assignment")
        listed = admin.list_consumer_groups().result(timeout=10).valid
        mine = [g for g in listed if g.group_id == group]
        assert mine and mine[0].state.name == "STABLE"
        desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
        assert desc.state.name == "STABLE"
        assert desc.partition_assignor == "range"
        assert [mem.client_id for mem in desc.members] == ["admin-test-client"]
        owned = sorted(tp.partition for tp in desc.members[0].assignment.topic_partitions)
        assert owned == [0, 1]
        wait_until(lambda: len(m.records) == 10, what="records")
        # A synchronous commit needs the polling thread out of the way.
        m.stop_polling()
        m.consumer.commit(asynchronous=False)
    finally:
        m.close()
    request = [ConsumerGroupTopicPartitions(group)]
    offsets = admin.list_consumer_group_offsets(request)[group].result(timeout=10)
    assert {tp.partition: tp.offset for tp in offsets.topic_partitions} == {0: 5, 1: 5}
    # The group is empty now: its offsets may be changed.
    change = [ConsumerGroupTopicPartitions(group, [TopicPartition(unique_topic, 0, 2)])]
    admin.alter_consumer_group_offsets(change)[group].result(timeout=10)
    assert committed(gbroker, group, unique_topic, partitions) == {0: 2, 1: 5}
    admin.delete_consumer_groups([group])[group].result(timeout=10)
    assert committed(gbroker, group, unique_topic, partitions) == {0: -1001, 1: -1001}
    assert group not in [g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid]
    with pytest.raises(KafkaException) as err:
        admin.delete_consumer_groups([group])[group].result(timeout=10)
    assert err.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND


def test_delete_group_with_members_is_refused(gbroker, unique_topic):
    create_topic(gbroker, unique_topic, 1)
    group = new_group()
    m = PollingMember(gbroker, group, unique_topic)
    try:
        wait_until(lambda: m.assignment(), what="assignment")
        admin = AdminClient({"bootstrap.servers": gbroker})
        with pytest.raises(KafkaException) as err:
            admin.delete_consumer_groups([group])[group].result(timeout=10)
        assert err.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
    finally:
        m.close()


# -- raw requests for inputs the clients never send --------------------------


def raw_request(bootstrap: str, request, correlation_id: int = 7):
    """Sends one non-flexible kafka-python request and decodes its response."""
    # kafka-python's encode() holds its object weakly: keep both alive.
    header_struct = request.build_header(correlation_id, "raw-test")
    header = header_struct.encode()
    body = request.encode()
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as s:
        s.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        data = recv_exact(s, size)
    assert struct.unpack(">i", data[:4])[0] == correlation_id
    return request.RESPONSE_TYPE.decode(data[4:])


def recv_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise AssertionError("connection closed")
        out += chunk
    return out


def commit_raw(bootstrap, group, generation, member, topic, partition, offset, metadata=""):
    from kafka.protocol.commit import OffsetCommitRequest

    req = OffsetCommitRequest[2](group, generation, member, -1, [(topic, [(partition, offset, metadata)])])
    resp = raw_request(bootstrap, req)
    return resp.topics[0][1][0][1]


def test_bad_group_requests_get_kafka_errors_and_the_group_keeps_working(gbroker, unique_topic):
    from kafka.protocol.group import HeartbeatRequest, JoinGroupRequest

    create_topic(gbroker, unique_topic, 2)
    group = new_group()
    m = PollingMember(gbroker, group, unique_topic)
    try:
        wait_until(lambda: m.assignment() == {0, 1}, what="assignment")
        admin = AdminClient({"bootstrap.servers": gbroker})
        member_id = admin.describe_consumer_groups([group])[group].result(timeout=10).members[0].member_id
        assert commit_raw(gbroker, group, 999, member_id, unique_topic, 0, 1) == ILLEGAL_GENERATION
        assert commit_raw(gbroker, group, 1, "nobody", unique_topic, 0, 1) == UNKNOWN_MEMBER_ID
        # A standalone commit while the group has members names no member.
        assert commit_raw(gbroker, group, -1, "", unique_topic, 0, 1) == UNKNOWN_MEMBER_ID
        standalone = new_group()
        too_long = "x" * 4097
        assert commit_raw(gbroker, standalone, -1, "", unique_topic, 0, 1, too_long) == OFFSET_METADATA_TOO_LARGE
        assert commit_raw(gbroker, standalone, -1, "", unique_topic, 0, 1, "y" * 4096) == 0
        assert commit_raw(gbroker, "", -1, "", unique_topic, 0, 1) == INVALID_GROUP_ID
        join = JoinGroupRequest[1]("", SESSION_MS, SESSION_MS, "", "consumer", [("range", b"")])
        assert raw_request(gbroker, join).error_code == INVALID_GROUP_ID
        join = JoinGroupRequest[1](group, 1000, SESSION_MS, "", "consumer", [("range", b"")])
        assert raw_request(gbroker, join).error_code == INVALID_SESSION_TIMEOUT
        assert raw_request(gbroker, HeartbeatRequest[0](group, 1, "nobody")).error_code == UNKNOWN_MEMBER_ID
        # The healthy member still reads new records and commits.
        produce(gbroker, unique_topic, 10, 2)
        wait_until(lambda: len(m.records) == 10, what="records after the bad requests")
        m.stop_polling()
        m.consumer.commit(asynchronous=False)
        assert committed(gbroker, group, unique_topic, 2) == {0: 5, 1: 5}
        assert m.assignment() == {0, 1}
    finally:
        m.close()


def offset_delete_raw(bootstrap: str, group: str, topic: str, partition: int) -> tuple[int, int]:
    """OffsetDelete v0 (not in kafka-python): (top-level error, partition error)."""

    def string(s: str) -> bytes:
        raw = s.encode()
        return struct.pack(">h", len(raw)) + raw

    client = string("raw-test")
    header = struct.pack(">hhi", 47, 0, 9) + client
    body = string(group) + struct.pack(">i", 1) + string(topic) + struct.pack(">ii", 1, partition)
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as s:
        s.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        data = recv_exact(s, size)
    error, _throttle, topics = struct.unpack_from(">hii", data, 4)
    if topics == 0:
        return error, -1
    (name_len,) = struct.unpack_from(">h", data, 14)
    pos = 16 + name_len
    _count, _index, partition_error = struct.unpack_from(">iih", data, pos)
    return error, partition_error


def test_offset_delete(gbroker, unique_topic):
    create_topic(gbroker, unique_topic, 1)
    group = new_group()
    assert commit_raw(gbroker, group, -1, "", unique_topic, 0, 3) == 0
    assert committed(gbroker, group, unique_topic, 1) == {0: 3}
    assert offset_delete_raw(gbroker, group, unique_topic, 0) == (0, 0)
    assert committed(gbroker, group, unique_topic, 1) == {0: -1001}
    assert offset_delete_raw(gbroker, new_group(), unique_topic, 0)[0] == GROUP_ID_NOT_FOUND
    # A topic an active member subscribes to keeps its offsets.
    m = PollingMember(gbroker, group, unique_topic)
    try:
        wait_until(lambda: m.assignment(), what="assignment")
        assert offset_delete_raw(gbroker, group, unique_topic, 0) == (0, GROUP_SUBSCRIBED_TO_TOPIC)
    finally:
        m.close()


def test_internal_offsets_topic(gbroker, unique_topic):
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=gbroker)
    try:
        described = admin.describe_topics(["__consumer_offsets"])
        assert described[0]["is_internal"] is True
        assert len(described[0]["partitions"]) == 50
    finally:
        admin.close()
    p = Producer({"bootstrap.servers": gbroker, "message.send.max.retries": 0})
    errors = []
    p.produce("__consumer_offsets", b"x", on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert errors and errors[0] is not None and errors[0].code() == KafkaError.TOPIC_EXCEPTION
    cadmin = AdminClient({"bootstrap.servers": gbroker})
    with pytest.raises(KafkaException) as err:
        cadmin.delete_topics(["__consumer_offsets"])["__consumer_offsets"].result(timeout=10)
    assert err.value.args[0].code() == KafkaError.TOPIC_EXCEPTION


def test_default_initial_rebalance_delay(broker_factory, unique_topic):
    """With the default group.initial.rebalance.delay.ms (3000) the first
    rebalance of an empty group waits for more members."""
    b = broker_factory()
    create_topic(b.bootstrap, unique_topic, 1)
    started = time.monotonic()
    m = PollingMember(b.bootstrap, new_group(), unique_topic)
    try:
        wait_until(lambda: m.assignment(), timeout=30, what="assignment")
        assert time.monotonic() - started >= 2.9
    finally:
        m.close()


# -- kafka-python and aiokafka ----------------------------------------------


def test_kafka_python_group_of_two(gbroker, unique_topic):
    from kafka import KafkaConsumer, TopicPartition as KTP

    partitions, count = 4, 200
    create_topic(gbroker, unique_topic, partitions)
    group = new_group()
    consumers = [
        KafkaConsumer(
            unique_topic,
            bootstrap_servers=gbroker,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_MS,
            heartbeat_interval_ms=500,
        )
        for _ in range(2)
    ]
    records: list[list[tuple[int, int]]] = [[], []]
    stop = threading.Event()

    def run(i):
        while not stop.is_set():
            for batch in consumers[i].poll(timeout_ms=100).values():
                records[i].extend((r.partition, r.offset) for r in batch)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    try:

        def split():
            sets = [{tp.partition for tp in c.assignment()} for c in consumers]
            return all(sets) and not (sets[0] & sets[1]) and (sets[0] | sets[1]) == set(range(partitions))

        wait_until(split, what="a stable split")
        produce(gbroker, unique_topic, count, partitions)
        wait_until(lambda: len(records[0]) + len(records[1]) >= count, what="all records")
        stop.set()
        for t in threads:
            t.join(10)
        all_records = records[0] + records[1]
        assert len(all_records) == count and len(set(all_records)) == count
        for c in consumers:
            c.commit()
        per_partition = count // partitions
        assert committed(gbroker, group, unique_topic, partitions) == {p: per_partition for p in range(partitions)}
        assert consumers[0].committed(KTP(unique_topic, 0)) == per_partition
    finally:
        stop.set()
        for c in consumers:
            c.close()


def test_aiokafka_group_of_two(gbroker, unique_topic):
    from aiokafka import AIOKafkaConsumer

    partitions, count = 4, 200
    create_topic(gbroker, unique_topic, partitions)
    group = new_group()

    async def main():
        consumers = [
            AIOKafkaConsumer(
                unique_topic,
                bootstrap_servers=gbroker,
                group_id=group,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                session_timeout_ms=SESSION_MS,
                heartbeat_interval_ms=500,
            )
            for _ in range(2)
        ]
        for c in consumers:
            await c.start()
        records: list[list[tuple[int, int]]] = [[], []]
        stop = asyncio.Event()

        async def run(i):
            while not stop.is_set():
                batches = await consumers[i].getmany(timeout_ms=100)
                for batch in batches.values():
                    records[i].extend((r.partition, r.offset) for r in batch)

        tasks = [asyncio.create_task(run(i)) for i in range(2)]
        try:
            deadline = time.monotonic() + 30
            while True:
                sets = [{tp.partition for tp in c.assignment()} for c in consumers]
                if all(sets) and not (sets[0] & sets[1]) and (sets[0] | sets[1]) == set(range(partitions)):
                    break
                assert time.monotonic() < deadline, f"no stable split: {sets}"
                await asyncio.sleep(0.2)
            await asyncio.to_thread(produce, gbroker, unique_topic, count, partitions)
            while len(records[0]) + len(records[1]) < count:
                assert time.monotonic() < deadline + 30, "records missing"
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.gather(*tasks)
            all_records = records[0] + records[1]
            assert len(all_records) == count and len(set(all_records)) == count
            for c in consumers:
                await c.commit()
        finally:
            stop.set()
            for c in consumers:
                await c.stop()

    asyncio.run(main())
    assert committed(gbroker, group, unique_topic, partitions) == {p: count // partitions for p in range(partitions)}
