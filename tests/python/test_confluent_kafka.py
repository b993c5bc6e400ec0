"""confluent-kafka (librdkafka) against Runnel.

Consumers use manual assignment with explicit offsets only: confluent-kafka
insists on a group.id, so a dummy one is set, but nothing subscribes or
commits. Producers run with enable.idempotence=false.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from runnel_helpers import (
    BASE_TS,
    BROKER_MESSAGE_MAX_BYTES,
    CLIENT_MAX_BYTES,
    CODECS,
    assert_stored_with_codec,
    stored_batches,
    LARGE_VALUE_SIZE,
    Rec,
    compressible_value,
    large_value,
    offsets_for_times_cases,
    round_trip_records,
    wait_until,
)

TIMEOUT = 30.0


# -- client helpers ------------------------------------------------------------


def make_producer(broker: str, **conf) -> Producer:
    base = {
        "bootstrap.servers": broker,
        "enable.idempotence": False,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 30000,
    }
    base.update(conf)
    return Producer(base)


def make_consumer(broker: str, **conf) -> Consumer:
    base = {
        "bootstrap.servers": broker,
        # confluent-kafka refuses to build a consumer without a group.id; no
        # group API is used: partitions are assigned by hand, nothing commits.
        "group.id": "runnel-tests-unused-group",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # Offsets are always explicit; an out-of-range one must surface as an error.
        "auto.offset.reset": "error",
    }
    base.update(conf)
    return Consumer(base)


def make_admin(broker: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker})


def produce(producer: Producer, topic: str, recs: list[Rec], partition: int | None = None):
    """Produce recs in order, flush, and return [(partition, offset, timestamp)] per record."""
    results: list = [None] * len(recs)

    for i, rec in enumerate(recs):

        def on_delivery(err, msg, i=i):
            results[i] = (err, msg.partition(), msg.offset(), msg.timestamp())

        kwargs = {"key": rec.key, "value": rec.value, "on_delivery": on_delivery}
        if rec.headers:
            kwargs["headers"] = rec.headers
        if rec.timestamp is not None:
            kwargs["timestamp"] = rec.timestamp
        if partition is not None:
            kwargs["partition"] = partition
        producer.produce(topic, **kwargs)
        producer.poll(0)
    remaining = producer.flush(TIMEOUT)
    assert remaining == 0, f"{remaining} records still undelivered after {TIMEOUT}s"
    assert all(r is not None for r in results), "a delivery report is missing"
    errors = [(i, r[0]) for i, r in enumerate(results) if r[0] is not None]
    assert not errors, f"delivery errors: {errors[:5]}"
    return [r[1:] for r in results]


def consume(consumer: Consumer, n: int, timeout: float = TIMEOUT):
    """Return exactly n messages (raises on a consumer error or a timeout)."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=n - len(out), timeout=0.5):
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(msg.error())
            out.append(msg)
    assert len(out) == n, f"consumed {len(out)} of {n} records within {timeout}s"
    return out


def assert_no_more(consumer: Consumer, wait: float = 1.0):
    """Nothing beyond what was consumed arrives within `wait` seconds."""
    extra = [m for m in consumer.consume(num_messages=100, timeout=wait) if not m.error()]
    assert not extra, f"unexpected extra records at offsets {[m.offset() for m in extra]}"


def consume_from(broker: str, topic: str, partition: int, offset: int, n: int, **conf):
    c = make_consumer(broker, **conf)
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        msgs = consume(c, n)
        assert_no_more(c, 0.5)
        return msgs
    finally:
        c.close()


def assert_same_records(msgs, recs: list[Rec], topic: str, partition: int = 0, first_offset: int = 0):
    assert len(msgs) == len(recs)
    for i, (msg, rec) in enumerate(zip(msgs, recs)):
        where = f"record {i}"
        assert msg.topic() == topic, where
        assert msg.partition() == partition, where
        assert msg.offset() == first_offset + i, where
        assert msg.key() == rec.key, where
        assert msg.value() == rec.value, where
        assert (msg.headers() or []) == rec.headers, where
        if rec.timestamp is not None:
            assert msg.timestamp() == (TIMESTAMP_CREATE_TIME, rec.timestamp), where


def create_topic(admin: AdminClient, topic: str, partitions: int):
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    futures[topic].result(TIMEOUT)


def topic_partitions(admin: AdminClient, topic: str):
    """Partition metadata of topic from a full (non-creating) Metadata request, or None."""
    md = admin.list_topics(timeout=TIMEOUT)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return t.partitions


# -- tests ---------------------------------------------------------------------


def test_round_trip_keys_headers_timestamps(broker, unique_topic):
    """Goal: every record field survives a produce/fetch round trip unchanged.

    Method: produce records with a key, a null key, an empty key, a null value,
    an empty value, binary/empty/repeated headers and explicit (non-monotonic)
    CreateTimes; check each delivery report (partition 0, offsets 0..n-1),
    then fetch from offset 0 and compare every field of every record.
    """
    recs = round_trip_records()
    p = make_producer(broker)
    delivered = produce(p, unique_topic, recs)
    assert [(part, off) for part, off, _ in delivered] == [(0, i) for i in range(len(recs))]
    assert [ts for _, _, ts in delivered] == [(TIMESTAMP_CREATE_TIME, r.timestamp) for r in recs]

    msgs = consume_from(broker, unique_topic, 0, 0, len(recs))
    assert_same_records(msgs, recs, unique_topic)


def test_large_record(broker, unique_topic):
    """Goal: a ~1 MiB record (just under Kafka's default message.max.bytes) round-trips.

    Method: raise librdkafka's message.max.bytes and fetch limits, produce one
    record of 1 MiB - 1 KiB of random bytes between two small ones, fetch all
    three from offset 0 and compare bytes.
    """
    big = large_value()
    recs = [Rec(b"before", b"small"), Rec(b"big", big), Rec(b"after", b"small")]
    p = make_producer(broker, **{"message.max.bytes": BROKER_MESSAGE_MAX_BYTES})
    delivered = produce(p, unique_topic, recs)
    assert [off for _, off, _ in delivered] == [0, 1, 2]

    msgs = consume_from(
        broker,
        unique_topic,
        0,
        0,
        3,
        **{"fetch.message.max.bytes": CLIENT_MAX_BYTES, "fetch.max.bytes": 4 * CLIENT_MAX_BYTES},
    )
    assert len(msgs[1].value()) == LARGE_VALUE_SIZE
    assert_same_records(msgs, recs, unique_topic)


def test_record_over_message_max_bytes_is_rejected(broker, unique_topic):
    """Goal: a batch larger than message.max.bytes (1048588) is refused with MESSAGE_TOO_LARGE.

    Method: allow 2 MiB on the client, produce an uncompressed record whose
    value alone is message.max.bytes + 1 bytes; the delivery report must carry
    MSG_SIZE_TOO_LARGE (Kafka error 10) and the partition must stay empty.
    """
    p = make_producer(broker, **{"message.max.bytes": CLIENT_MAX_BYTES, "compression.type": "none"})
    # A small record first, so the topic exists and the partition end is known.
    produce(p, unique_topic, [Rec(b"small", b"ok")])
    errors = []
    p.produce(
        unique_topic,
        key=b"too-big",
        value=b"x" * (BROKER_MESSAGE_MAX_BYTES + 1),
        on_delivery=lambda err, msg: errors.append(err),
    )
    assert p.flush(TIMEOUT) == 0
    assert len(errors) == 1 and errors[0] is not None, f"expected a delivery error, got {errors}"
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errors[0]

    c = make_consumer(broker)
    try:
        low, high = c.get_watermark_offsets(TopicPartition(unique_topic, 0), timeout=TIMEOUT, cached=False)
        assert (low, high) == (0, 1)
    finally:
        c.close()


@pytest.mark.parametrize("codec", CODECS)
def test_compression(broker, session_broker, unique_topic, codec):
    """Goal: batches compressed with each codec are stored and fetched intact.

    Method: produce 300 compressible records with keys and headers using
    compression.type=<codec> and lingering so they batch, then fetch all from
    offset 0 and compare every record. The segment files must hold the
    batches with that codec (Runnel stores batches as the producer sent them).
    """
    recs = [
        Rec(f"k{i}".encode(), compressible_value(i), [("i", str(i).encode())], BASE_TS + i)
        for i in range(300)
    ]
    p = make_producer(broker, **{"compression.type": codec, "linger.ms": 50})
    delivered = produce(p, unique_topic, recs)
    assert [off for _, off, _ in delivered] == list(range(300))

    msgs = consume_from(broker, unique_topic, 0, 0, len(recs))
    assert_same_records(msgs, recs, unique_topic)
    assert_stored_with_codec(session_broker.data_dir, unique_topic, codec, len(recs))


def test_order_within_partition(broker, session_broker, unique_topic):
    """Goal: many records in many batches come back in offset order, no gaps or duplicates.

    Method: produce 2,000 records to partition 0 in 8 flushed rounds of 250
    (batch.num.messages=100, so about 20 batches); each value encodes its
    sequence number. Fetch from 0 and require offset == sequence for all.
    """
    n = 2000
    p = make_producer(broker, **{"batch.num.messages": 100, "linger.ms": 2})
    delivered = []
    for start in range(0, n, 250):
        recs = [Rec(b"order", f"{i:06d}".encode()) for i in range(start, start + 250)]
        delivered += produce(p, unique_topic, recs, partition=0)
    assert [(part, off) for part, off, _ in delivered] == [(0, i) for i in range(n)]
    assert len(stored_batches(session_broker.data_dir, unique_topic)) >= 8, "expected several batches"

    msgs = consume_from(broker, unique_topic, 0, 0, n)
    assert [m.offset() for m in msgs] == list(range(n))
    assert [m.value() for m in msgs] == [f"{i:06d}".encode() for i in range(n)]


def test_watermarks_and_list_offsets_earliest_latest(broker, unique_topic):
    """Goal: ListOffsets earliest/latest track the log.

    Method: produce 10 records, check the watermarks (0, 10) through
    Consumer.get_watermark_offsets and AdminClient.list_offsets
    (OffsetSpec.earliest/latest); produce 5 more and check (0, 15).
    """
    p = make_producer(broker)
    admin = make_admin(broker)
    c = make_consumer(broker)
    tp = TopicPartition(unique_topic, 0)
    try:
        for total, batch in ((10, 10), (15, 5)):
            produce(p, unique_topic, [Rec(None, b"v%d" % i) for i in range(batch)])
            assert c.get_watermark_offsets(tp, timeout=TIMEOUT, cached=False) == (0, total)
            res = admin.list_offsets({tp: OffsetSpec.earliest()})
            assert res[tp].result(TIMEOUT).offset == 0
            res = admin.list_offsets({tp: OffsetSpec.latest()})
            assert res[tp].result(TIMEOUT).offset == total
    finally:
        c.close()


def test_offsets_for_times(broker, unique_topic):
    """Goal: ListOffsets by timestamp returns the first offset whose timestamp is >= the target.

    Method: produce 5 records (separate batches) with CreateTimes T+1000*i;
    query Consumer.offsets_for_times and AdminClient.list_offsets
    (OffsetSpec.for_timestamp) for timestamps before, at, between and after
    them; expect the exact offsets, and -1 past the end.
    """
    step = 1000
    p = make_producer(broker)
    for i in range(5):
        produce(p, unique_topic, [Rec(b"k", b"v%d" % i, [], BASE_TS + step * i)])
    admin = make_admin(broker)
    c = make_consumer(broker)
    try:
        for what, ts, expected in offsets_for_times_cases(BASE_TS, step):
            want = -1 if expected is None else expected
            [res] = c.offsets_for_times([TopicPartition(unique_topic, 0, ts)], timeout=TIMEOUT)
            assert res.error is None, (what, res.error)
            assert res.offset == want, f"offsets_for_times {what}: got {res.offset}, want {want}"
            tp = TopicPartition(unique_topic, 0)
            info = admin.list_offsets({tp: OffsetSpec.for_timestamp(ts)})[tp].result(TIMEOUT)
            assert info.offset == want, f"list_offsets for_timestamp {what}: got {info.offset}, want {want}"
            if expected is not None:
                assert info.timestamp == BASE_TS + step * expected, what
    finally:
        c.close()


@pytest.mark.parametrize("batching", ["one-batch", "separate-batches"])
def test_offsets_for_times_non_monotonic_and_max_timestamp(broker, unique_topic, batching):
    """Goal: by-timestamp lookups follow Kafka's rule with out-of-order CreateTimes,
    and OffsetSpec.max_timestamp finds the record with the largest timestamp.

    Method: produce 4 records with CreateTimes T, T+3000, T+1000, T+2000 (in one
    batch, or one batch each). Kafka returns the first offset (in offset order)
    whose timestamp is >= the target: T+1500 -> 1, T+2500 -> 1, T+3001 -> none.
    max_timestamp must return offset 1 with timestamp T+3000.
    """
    stamps = [BASE_TS, BASE_TS + 3000, BASE_TS + 1000, BASE_TS + 2000]
    recs = [Rec(b"k", b"v%d" % i, [], ts) for i, ts in enumerate(stamps)]
    if batching == "one-batch":
        p = make_producer(broker, **{"linger.ms": 200})
        produce(p, unique_topic, recs)
    else:
        p = make_producer(broker)
        for rec in recs:
            produce(p, unique_topic, [rec])
    admin = make_admin(broker)
    tp = TopicPartition(unique_topic, 0)

    def lookup(spec):
        return admin.list_offsets({tp: spec})[tp].result(TIMEOUT)

    for ts, want in ((BASE_TS - 1, 0), (BASE_TS + 1500, 1), (BASE_TS + 2500, 1), (BASE_TS + 3000, 1), (BASE_TS + 3001, -1)):
        assert lookup(OffsetSpec.for_timestamp(ts)).offset == want, f"for_timestamp(T+{ts - BASE_TS})"
    info = lookup(OffsetSpec.max_timestamp())
    assert (info.offset, info.timestamp) == (1, BASE_TS + 3000)


def test_consume_from_middle(broker, unique_topic):
    """Goal: a consumer assigned at offset k starts exactly at k.

    Method: produce 20 records, assign partition 0 at offset 7, and require the
    records received to be offsets 7..19 with the matching values.
    """
    recs = [Rec(b"k%d" % i, b"value-%d" % i) for i in range(20)]
    produce(make_producer(broker), unique_topic, recs)
    msgs = consume_from(broker, unique_topic, 0, 7, 13)
    assert msgs[0].offset() == 7
    assert_same_records(msgs, recs[7:], unique_topic, first_offset=7)


def test_multiple_partitions(broker, unique_topic):
    """Goal: a 3-partition topic created with CreateTopics keeps partitions apart.

    Method: AdminClient.create_topics with 3 partitions; metadata must list 3
    partitions led by node 1. Produce 10 records to each partition explicitly
    (delivery reports: that partition, offsets 0..9), then fetch each partition
    alone and find exactly its own records.
    """
    admin = make_admin(broker)
    create_topic(admin, unique_topic, 3)
    parts = wait_until(lambda: topic_partitions(admin, unique_topic), TIMEOUT, what="topic in metadata")
    assert sorted(parts) == [0, 1, 2]
    assert all(parts[i].leader == 1 for i in parts)

    p = make_producer(broker)
    by_part = {}
    for part in range(3):
        recs = [Rec(b"k%d" % i, f"p{part}-{i}".encode()) for i in range(10)]
        delivered = produce(p, unique_topic, recs, partition=part)
        assert [(pp, off) for pp, off, _ in delivered] == [(part, i) for i in range(10)]
        by_part[part] = recs
    for part in range(3):
        msgs = consume_from(broker, unique_topic, part, 0, 10)
        assert_same_records(msgs, by_part[part], unique_topic, partition=part)


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks(broker, unique_topic, acks):
    """Goal: producing with acks=0, 1 and all stores the records.

    Method: produce 50 records with the given acks; with acks 1/all the
    delivery reports carry offsets 0..49. Then fetch (waiting, since acks=0
    gives no confirmation) until all 50 arrive in order.
    """
    recs = [Rec(b"k", b"acks-%s-%d" % (acks.encode(), i)) for i in range(50)]
    delivered = produce(make_producer(broker, acks=acks), unique_topic, recs)
    if acks != "0":
        assert [off for _, off, _ in delivered] == list(range(50))
    msgs = consume_from(broker, unique_topic, 0, 0, 50)
    assert_same_records(msgs, recs, unique_topic)
