"""Exactly-once on Runnel with real clients: idempotent producers through a
proxy that loses Produce responses, transactions with confluent-kafka, an
exactly-once consume-transform-produce pipeline whose processor is killed
mid-stream, and a broker killed mid-transaction.

The proxy (kafka_proxy.py) sits on loopback between the clients and a broker
whose ``advertised.listener`` is the proxy, so every connection after
bootstrap goes through it too. When it loses a Produce response it closes the
connection: the batch is in the log but the client must retry it.

Transaction tests share one broker for the module whose coordinator checks
for timed-out transactions every few hundred milliseconds; the proxy, the
pipeline and the restart tests start their own.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import running_broker
from kafka_proxy import DroppingProxy
from runnel_helpers import wait_until

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable

# Settings of every broker these tests start.
TXN_SETTINGS = {
    "num.partitions": "3",
    "group.initial.rebalance.delay.ms": "0",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
}
# Clients reconnect at once after the proxy cuts a connection.
FAST_RECONNECT = {"reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 200, "retry.backoff.ms": 10}


# -- fixtures and helpers ------------------------------------------------------


@pytest.fixture(scope="module")
def tbroker(tmp_path_factory):
    """The module's broker for the transaction tests."""
    with running_broker(tmp_path_factory, "exactly-once", TXN_SETTINGS) as b:
        yield b.bootstrap


@pytest.fixture
def proxied(broker_factory):
    """(proxy, broker): a fresh broker that advertises the proxy in front of it."""
    proxy = DroppingProxy(seed=6)
    broker = broker_factory(settings={**TXN_SETTINGS, "advertised.listener": proxy.address})
    proxy.set_upstream(broker.bootstrap)
    proxy.start()
    yield proxy, broker
    proxy.close()


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=15)


def txn_producer(bootstrap: str, transactional_id: str | None = None, **extra) -> Producer:
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id or f"txn-{uuid.uuid4().hex[:8]}",
            "linger.ms": 1,
            **extra,
        }
    )
    p.init_transactions(30)
    return p


def high_watermarks(bootstrap: str, topic: str, partitions: int, isolation: str) -> list[int]:
    """Each partition's LATEST offset as ListOffsets answers it at this isolation level."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "isolation.level": isolation})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1] for p in range(partitions)]
    finally:
        c.close()


def read_all(
    bootstrap: str, topic: str, partitions: int, isolation: str, expect: int | None = None, timeout: float = 20.0
) -> list:
    """Every record of the topic, read from the start at this isolation level.

    Reads until ``expect`` records arrived, or, without ``expect``, until the
    consumer has reached the end (the LSO for read_committed) of every
    partition; then reads for one more second so extra records show up.
    """
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            **FAST_RECONNECT,
        }
    )
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    records, at_end = [], set()
    deadline = time.monotonic() + timeout
    settle = None
    try:
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=500, timeout=0.2):
                if m.error() is None:
                    records.append(m)
                    at_end.discard(m.partition())
                elif m.error().code() == -191:  # _PARTITION_EOF
                    at_end.add(m.partition())
                else:
                    raise KafkaException(m.error())
            done = len(records) >= expect if expect is not None else len(at_end) == partitions
            if done and settle is None:
                settle = time.monotonic() + 1.0
            if settle is not None and time.monotonic() >= settle:
                break
        return records
    finally:
        c.close()


def values(records) -> list[bytes]:
    return [m.value() for m in records]


# -- idempotent producers ----------------------------------------------------------


def produce_through_proxy(address: str, topic: str, name: str, count: int, partitions: int, idempotent: bool) -> None:
    """One confluent-kafka producer writing ``name-i`` for i in range(count), round-robin over partitions."""
    errors = []
    p = Producer(
        {
            "bootstrap.servers": address,
            "enable.idempotence": idempotent,
            "acks": "all",
            "linger.ms": 2,
            "batch.num.messages": 10,
            "message.timeout.ms": 60000,
            **FAST_RECONNECT,
        }
    )

    def delivered(err, msg):
        if err is not None:
            errors.append(err)

    for i in range(count):
        p.produce(topic, key=name.encode(), value=f"{name}-{i}".encode(), partition=i % partitions, on_delivery=delivered)
        if i % 50 == 49:
            p.poll(0)
    assert p.flush(60) == 0, "every record delivered"
    assert not errors, errors


def check_once_and_in_order(records, names: list[str], count: int) -> None:
    """Every ``name-i`` exactly once, and per partition each producer's i increasing."""
    seen = collections.Counter(values(records))
    expected = {f"{n}-{i}".encode() for n in names for i in range(count)}
    duplicated = {v: c for v, c in seen.items() if c > 1}
    assert not duplicated, f"{len(duplicated)} records written more than once, e.g. {list(duplicated.items())[:5]}"
    assert set(seen) == expected, f"missing {len(expected - set(seen))}, unexpected {len(set(seen) - expected)}"
    last: dict[tuple[int, str], int] = {}
    for m in records:
        name, i = m.value().decode().rsplit("-", 1)
        key = (m.partition(), name)
        assert last.get(key, -1) < int(i), f"{name}-{i} after {name}-{last[key]} in partition {m.partition()}"
        last[key] = int(i)


def test_confluent_idempotent_producers_write_each_record_once_through_lost_responses(proxied, unique_topic):
    proxy, broker = proxied
    partitions, count, names = 3, 300, ["a", "b", "c"]
    create_topic(proxy.address, unique_topic, partitions)
    proxy.drop_fraction = 0.15
    failures: list[str] = []

    def producer(name: str) -> None:
        try:
            produce_through_proxy(proxy.address, unique_topic, name, count, partitions, idempotent=True)
        except BaseException as e:  # an assertion in a producer thread fails the test
            failures.append(f"{name}: {e!r}")

    threads = [threading.Thread(target=producer, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    proxy.drop_fraction = 0.0
    assert proxy.dropped >= 5, f"the proxy lost only {proxy.dropped} of {proxy.produce_requests} Produce responses"
    records = read_all(proxy.address, unique_topic, partitions, "read_uncommitted", expect=len(names) * count)
    check_once_and_in_order(records, names, count)


def test_without_idempotence_the_same_lost_responses_duplicate_records(proxied, unique_topic):
    """The proxy really does make clients resend written batches: without idempotence they land twice."""
    proxy, broker = proxied
    create_topic(proxy.address, unique_topic, 1)
    proxy.drop_fraction = 0.3
    produce_through_proxy(proxy.address, unique_topic, "plain", 200, 1, idempotent=False)
    proxy.drop_fraction = 0.0
    assert proxy.dropped >= 3, f"the proxy lost only {proxy.dropped} Produce responses"
    records = read_all(proxy.address, unique_topic, 1, "read_uncommitted")
    seen = collections.Counter(values(records))
    assert len(seen) == 200, "every record arrived"
    assert len(records) > 200, "retried batches were written again"


def test_aiokafka_idempotent_producer_writes_each_record_once_through_lost_responses(proxied, unique_topic):
    from aiokafka import AIOKafkaProducer

    proxy, broker = proxied
    partitions, count, names = 2, 200, ["x", "y"]
    create_topic(proxy.address, unique_topic, partitions)

    async def one(name: str) -> None:
        p = AIOKafkaProducer(
            bootstrap_servers=proxy.address,
            enable_idempotence=True,
            linger_ms=2,
            max_batch_size=512,
            retry_backoff_ms=10,
            request_timeout_ms=10000,
        )
        await p.start()
        try:
            # Waiting every few records keeps requests small and many.
            futures = []
            for i in range(count):
                futures.append(
                    await p.send(unique_topic, key=name.encode(), value=f"{name}-{i}".encode(), partition=i % partitions)
                )
                if i % 5 == 4:
                    await asyncio.gather(*futures)
            await asyncio.gather(*futures)
        finally:
            await p.stop()

    async def run() -> None:
        await asyncio.gather(*(one(n) for n in names))

    proxy.drop_fraction = 0.15
    asyncio.run(asyncio.wait_for(run(), 120))
    proxy.drop_fraction = 0.0
    assert proxy.dropped >= 3, f"the proxy lost only {proxy.dropped} of {proxy.produce_requests} Produce responses"
    records = read_all(proxy.address, unique_topic, partitions, "read_uncommitted", expect=len(names) * count)
    check_once_and_in_order(records, names, count)


# -- transactions ----------------------------------------------------------------------


def test_commit_is_visible_to_read_committed_at_once(tbroker, unique_topic):
    create_topic(tbroker, unique_topic, 2)
    p = txn_producer(tbroker)
    p.begin_transaction()
    for i in range(10):
        p.produce(unique_topic, value=f"v{i}".encode(), partition=i % 2)
    assert p.flush(30) == 0
    # Open: the records are in the log, below the high watermark, above the LSO.
    assert high_watermarks(tbroker, unique_topic, 2, "read_uncommitted") == [5, 5]
    assert high_watermarks(tbroker, unique_topic, 2, "read_committed") == [0, 0]
    assert read_all(tbroker, unique_topic, 2, "read_committed", timeout=3) == []
    p.commit_transaction(30)
    # Each partition now holds its five records and the commit marker.
    assert high_watermarks(tbroker, unique_topic, 2, "read_committed") == [6, 6]
    started = time.monotonic()
    records = read_all(tbroker, unique_topic, 2, "read_committed", expect=10, timeout=10)
    assert sorted(values(records)) == sorted(f"v{i}".encode() for i in range(10))
    assert time.monotonic() - started < 5


def test_abort_is_invisible_to_read_committed_and_visible_to_read_uncommitted(tbroker, unique_topic):
    create_topic(tbroker, unique_topic, 2)
    plain = Producer({"bootstrap.servers": tbroker})
    p = txn_producer(tbroker)
    for outcome in ["aborted", "committed", "aborted-again"]:
        p.begin_transaction()
        for i in range(6):
            p.produce(unique_topic, value=f"{outcome}-{i}".encode(), partition=i % 2)
            plain.produce(unique_topic, value=f"plain-{outcome}-{i}".encode(), partition=i % 2)
        assert p.flush(30) == 0 and plain.flush(30) == 0
        if outcome.startswith("aborted"):
            p.abort_transaction(30)
        else:
            p.commit_transaction(30)
    plain_values = {f"plain-{o}-{i}".encode() for o in ["aborted", "committed", "aborted-again"] for i in range(6)}
    committed = {f"committed-{i}".encode() for i in range(6)}
    aborted = {f"{o}-{i}".encode() for o in ["aborted", "aborted-again"] for i in range(6)}

    rc = values(read_all(tbroker, unique_topic, 2, "read_committed"))
    assert len(rc) == len(set(rc))
    assert set(rc) == plain_values | committed, f"aborted records seen: {sorted(set(rc) & aborted)[:5]}"
    ru = values(read_all(tbroker, unique_topic, 2, "read_uncommitted"))
    assert set(ru) == plain_values | committed | aborted
    # Nothing is open, so both levels end at the same offset.
    assert high_watermarks(tbroker, unique_topic, 2, "read_committed") == high_watermarks(
        tbroker, unique_topic, 2, "read_uncommitted"
    )


def test_second_producer_with_the_same_transactional_id_fences_the_first(tbroker, unique_topic):
    create_topic(tbroker, unique_topic, 1)
    tid = f"fenced-{uuid.uuid4().hex[:8]}"
    first = txn_producer(tbroker, tid)
    first.begin_transaction()
    first.produce(unique_topic, value=b"zombie")
    assert first.flush(30) == 0

    second = txn_producer(tbroker, tid)  # aborts the first's open transaction
    with pytest.raises(KafkaException) as fenced:
        first.produce(unique_topic, value=b"zombie-2")
        first.flush(10)
        first.commit_transaction(10)
    err = fenced.value.args[0]
    assert err.fatal(), f"a fenced producer gets a fatal error, got {err}"

    second.begin_transaction()
    second.produce(unique_topic, value=b"successor")
    second.commit_transaction(30)
    rc = values(read_all(tbroker, unique_topic, 1, "read_committed"))
    assert rc == [b"successor"]
    assert b"zombie" in values(read_all(tbroker, unique_topic, 1, "read_uncommitted"))


def test_transaction_left_open_past_its_timeout_is_aborted(tbroker, unique_topic):
    create_topic(tbroker, unique_topic, 2)
    p = txn_producer(tbroker, **{"transaction.timeout.ms": 2000})
    p.begin_transaction()
    for i in range(4):
        p.produce(unique_topic, value=f"late-{i}".encode(), partition=i % 2)
    assert p.flush(30) == 0
    opened = time.monotonic()
    assert high_watermarks(tbroker, unique_topic, 2, "read_committed") == [0, 0]
    # The coordinator aborts it: abort markers make the LSO reach the log end.
    wait_until(
        lambda: high_watermarks(tbroker, unique_topic, 2, "read_committed") == [3, 3],
        timeout=20,
        what="the timed-out transaction's abort markers",
    )
    assert time.monotonic() - opened > 1.0, "not aborted before its timeout"
    assert read_all(tbroker, unique_topic, 2, "read_committed", timeout=5) == []
    assert len(read_all(tbroker, unique_topic, 2, "read_uncommitted")) == 4
    with pytest.raises(KafkaException):
        p.commit_transaction(10)


# -- consume-transform-produce --------------------------------------------------------


class Processor:
    """One run of eos_processor.py. With ``kill_at``, its own PID is SIGKILLed
    as soon as it reports an open transaction (records written, not committed)
    after committing at least ``kill_at`` records; ``killed_open`` is then set."""

    def __init__(self, args: list[str], log: Path, kill_at: int | None = None):
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, str(HERE / "eos_processor.py"), *args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env={**os.environ, "EOS_BATCH": "25", "EOS_PAUSE_MS": "100"},
        )
        self.kill_at = kill_at
        self.committed = 0
        self.killed_open = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            word, _, number = line.decode().strip().partition(" ")
            if word == "committed":
                self.committed = int(number)
            elif word == "open" and self.kill_at is not None and self.committed >= self.kill_at:
                if not self.killed_open.is_set():
                    self.proc.send_signal(signal.SIGKILL)
                    self.killed_open.set()

    def stop(self) -> None:
        """SIGKILL this process (its own PID) if still running, and reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)
        self.log.close()


def test_consume_transform_produce_is_exactly_once_across_processor_kills(proxied, unique_topic, tmp_path):
    proxy, broker = proxied
    bootstrap = proxy.address
    partitions, n = 3, 1500
    source, sink = f"{unique_topic}-in", f"{unique_topic}-out"
    create_topic(bootstrap, source, partitions)
    create_topic(bootstrap, sink, partitions)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(n):
        p.produce(source, key=str(i).encode(), value=f"{i}".encode(), partition=i % partitions)
    assert p.flush(30) == 0

    args = [bootstrap, source, sink, f"eos-{uuid.uuid4().hex[:8]}", f"eos-{uuid.uuid4().hex[:8]}"]
    log = tmp_path / "processor.stderr.log"
    # Three runs die by SIGKILL inside an open transaction, mid-stream.
    for kill_at in (150, 100, 100):
        proc = Processor(args, log, kill_at=kill_at)
        try:
            killed = proc.killed_open.wait(60)
            exited = proc.proc.poll() if not killed else None
            assert killed, f"processor never reached an open transaction after {kill_at} records (exit {exited})"
        finally:
            proc.stop()
    # The last run finishes the stream.
    proc = Processor(args, log)
    try:
        records = read_all(bootstrap, sink, partitions, "read_committed", expect=n, timeout=90)
        assert proc.proc.poll() is None, f"processor exited with {proc.proc.returncode}: {log.read_text()[-2000:]}"
    finally:
        proc.stop()
    seen = collections.Counter(values(records))
    expected = {f"out-{i}".encode() for i in range(n)}
    duplicated = {v: c for v, c in seen.items() if c > 1}
    assert not duplicated, f"{len(duplicated)} results written more than once, e.g. {list(duplicated.items())[:5]}"
    assert set(seen) == expected, f"missing {len(expected - set(seen))}, unexpected {len(set(seen) - expected)}"
    for m in records:
        assert m.key() == m.value()[len(b"out-") :], "key and result stay together"
    # The killed runs' open transactions left records in the log that read_committed dropped.
    assert len(read_all(bootstrap, sink, partitions, "read_uncommitted")) > n


# -- broker restarts --------------------------------------------------------------------


def test_broker_killed_mid_transaction_ends_every_transaction(proxied, unique_topic):
    proxy, broker = proxied
    bootstrap = proxy.address
    partitions, per_txn = 2, 10
    create_topic(bootstrap, unique_topic, partitions)
    p = txn_producer(bootstrap, **{"transaction.timeout.ms": 3000}, **FAST_RECONNECT)

    def transaction(name: str, commit: bool | None) -> None:
        p.begin_transaction()
        for i in range(per_txn):
            p.produce(unique_topic, value=f"{name}-{i}".encode(), partition=i % partitions)
        assert p.flush(30) == 0
        if commit is True:
            p.commit_transaction(30)
        elif commit is False:
            p.abort_transaction(30)

    transaction("t0", True)
    transaction("t1", False)
    transaction("t2", True)
    transaction("open", None)  # still open when the broker dies

    broker.proc.send_signal(signal.SIGKILL)
    broker.proc.wait(10)
    broker.start()
    proxy.set_upstream(broker.bootstrap)

    # The producer may finish its transaction or learn that it was aborted.
    try:
        p.commit_transaction(30)
        open_committed = True
    except KafkaException:
        open_committed = False

    # The LSO advances again: read_committed reaches the log end.
    wait_until(
        lambda: high_watermarks(bootstrap, unique_topic, partitions, "read_committed")
        == high_watermarks(bootstrap, unique_topic, partitions, "read_uncommitted"),
        timeout=30,
        what="the last stable offset to reach the log end",
    )
    rc = values(read_all(bootstrap, unique_topic, partitions, "read_committed"))
    groups = collections.Counter(v.decode().rsplit("-", 1)[0] for v in rc)
    assert len(rc) == len(set(rc)), "no record twice"
    for name, count in groups.items():
        assert count == per_txn, f"transaction {name} is partly visible ({count} of {per_txn} records)"
    expected = {"t0", "t2"} | ({"open"} if open_committed else set())
    assert set(groups) == expected

    # And transactions work again after the restart.
    transaction("after", True)
    rc = values(read_all(bootstrap, unique_topic, partitions, "read_committed"))
    assert sum(v.startswith(b"after-") for v in rc) == per_txn


def test_broker_killed_while_transactions_commit_never_shows_a_partial_one(proxied, unique_topic):
    """A producer commits transactions in a loop while the broker is SIGKILLed and restarted."""
    proxy, broker = proxied
    bootstrap = proxy.address
    partitions, per_txn = 3, 6
    create_topic(bootstrap, unique_topic, partitions)
    stop = threading.Event()
    outcome: dict[str, str] = {}
    tid = f"restart-{uuid.uuid4().hex[:8]}"

    def new_producer() -> Producer:
        # The broker may be down: keep trying (a new instance also fences the old one).
        while True:
            try:
                return txn_producer(bootstrap, tid, **{"transaction.timeout.ms": 3000}, **FAST_RECONNECT)
            except KafkaException:
                if stop.is_set():
                    raise
                time.sleep(0.2)

    def commit(p: Producer) -> None:
        for _ in range(5):
            try:
                p.commit_transaction(30)
                return
            except KafkaException as e:
                if not e.args[0].retriable():
                    raise
        p.commit_transaction(30)

    def loop() -> None:
        p = new_producer()
        k = 0
        while not stop.is_set():
            name = f"t{k}"
            k += 1
            try:
                p.begin_transaction()
                for i in range(per_txn):
                    p.produce(unique_topic, value=f"{name}-{i}".encode(), partition=i % partitions)
                p.flush(30)
                commit(p)
                outcome[name] = "committed"
            except KafkaException:
                # Whether it committed is unknown: it must be all or nothing either way.
                outcome[name] = "failed"
                try:
                    p.abort_transaction(30)
                except KafkaException:
                    p = new_producer()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    wait_until(lambda: len(outcome) >= 5, timeout=30, what="a few committed transactions")
    broker.proc.send_signal(signal.SIGKILL)
    broker.proc.wait(10)
    broker.start()
    proxy.set_upstream(broker.bootstrap)
    after = len(outcome)
    wait_until(
        lambda: sum(1 for o in list(outcome.values())[after:] if o == "committed") >= 3,
        timeout=60,
        what="transactions to commit after the restart",
    )
    stop.set()
    t.join(60)
    wait_until(
        lambda: high_watermarks(bootstrap, unique_topic, partitions, "read_committed")
        == high_watermarks(bootstrap, unique_topic, partitions, "read_uncommitted"),
        timeout=30,
        what="the last stable offset to reach the log end",
    )
    rc = values(read_all(bootstrap, unique_topic, partitions, "read_committed"))
    assert len(rc) == len(set(rc)), "no record twice"
    groups = collections.Counter(v.decode().rsplit("-", 1)[0] for v in rc)
    partial = {name: c for name, c in groups.items() if c != per_txn}
    assert not partial, f"partly visible transactions: {partial}"
    missing = [name for name, o in outcome.items() if o == "committed" and name not in groups]
    assert not missing, f"committed transactions not visible: {missing}"
