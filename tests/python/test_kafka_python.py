"""kafka-python (2.x, pure Python) against Runnel.

Consumers use group_id=None with assign()/seek() (no group APIs, no commits);
producers run with enable_idempotence=False.
"""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from runnel_helpers import (
    BASE_TS,
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
CREATE_TIME = 0  # ConsumerRecord.timestamp_type for CreateTime


# -- client helpers ------------------------------------------------------------


def make_producer(broker: str, **conf) -> KafkaProducer:
    base = {
        "bootstrap_servers": broker,
        "enable_idempotence": False,
        "acks": "all",
        "linger_ms": 5,
        "request_timeout_ms": 30000,
    }
    base.update(conf)
    return KafkaProducer(**base)


def make_consumer(broker: str, **conf) -> KafkaConsumer:
    base = {
        "bootstrap_servers": broker,
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "request_timeout_ms": 30000,
    }
    base.update(conf)
    return KafkaConsumer(**base)


def produce(producer: KafkaProducer, topic: str, recs: list[Rec], partition: int | None = None):
    """Send recs in order, flush, and return the RecordMetadata of each."""
    futures = []
    for rec in recs:
        futures.append(
            producer.send(
                topic,
                key=rec.key,
                value=rec.value,
                headers=rec.headers or None,
                timestamp_ms=rec.timestamp,
                partition=partition,
            )
        )
    producer.flush(TIMEOUT)
    return [f.get(timeout=TIMEOUT) for f in futures]


def consume(consumer: KafkaConsumer, n: int, timeout: float = TIMEOUT):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        batches = consumer.poll(timeout_ms=500, max_records=n - len(out))
        for tp in sorted(batches):
            out.extend(batches[tp])
    assert len(out) == n, f"consumed {len(out)} of {n} records within {timeout}s"
    return out


def assert_no_more(consumer: KafkaConsumer, wait_ms: int = 1000):
    extra = [r for rs in consumer.poll(timeout_ms=wait_ms).values() for r in rs]
    assert not extra, f"unexpected extra records at offsets {[r.offset for r in extra]}"


def consume_from(broker: str, topic: str, partition: int, offset: int, n: int, **conf):
    c = make_consumer(broker, **conf)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek(tp, offset)
        records = consume(c, n)
        assert_no_more(c, 500)
        return records
    finally:
        c.close()


def assert_same_records(records, recs: list[Rec], topic: str, partition: int = 0, first_offset: int = 0):
    assert len(records) == len(recs)
    for i, (r, rec) in enumerate(zip(records, recs)):
        where = f"record {i}"
        assert (r.topic, r.partition, r.offset) == (topic, partition, first_offset + i), where
        assert r.key == rec.key, where
        assert r.value == rec.value, where
        assert list(r.headers or []) == rec.headers, where
        if rec.timestamp is not None:
            assert (r.timestamp_type, r.timestamp) == (CREATE_TIME, rec.timestamp), where


# -- tests ---------------------------------------------------------------------


def test_round_trip_keys_headers_timestamps(broker, unique_topic):
    """Goal: every record field survives a produce/fetch round trip unchanged.

    Method: send records with a key, a null key, an empty key, a null value, an
    empty value, binary/empty/repeated headers and explicit (non-monotonic)
    CreateTimes; check each RecordMetadata (partition 0, offsets 0..n-1,
    timestamp), then fetch from offset 0 and compare every field.
    """
    recs = round_trip_records()
    p = make_producer(broker)
    try:
        meta = produce(p, unique_topic, recs)
    finally:
        p.close(TIMEOUT)
    assert [(m.partition, m.offset) for m in meta] == [(0, i) for i in range(len(recs))]
    assert [m.timestamp for m in meta] == [r.timestamp for r in recs]

    records = consume_from(broker, unique_topic, 0, 0, len(recs))
    assert_same_records(records, recs, unique_topic)


def test_large_record(broker, unique_topic):
    """Goal: a ~1 MiB record (just under Kafka's default message.max.bytes) round-trips.

    Method: raise max_request_size, the fetch limits and the largest response
    frame accepted, send one record of 1 MiB - 1 KiB of random bytes between two
    small ones, fetch all three.
    """
    recs = [Rec(b"before", b"small"), Rec(b"big", large_value()), Rec(b"after", b"small")]
    p = make_producer(broker, max_request_size=CLIENT_MAX_BYTES)
    try:
        meta = produce(p, unique_topic, recs)
    finally:
        p.close(TIMEOUT)
    assert [m.offset for m in meta] == [0, 1, 2]
    records = consume_from(
        broker,
        unique_topic,
        0,
        0,
        3,
        max_partition_fetch_bytes=CLIENT_MAX_BYTES,
        fetch_max_bytes=4 * CLIENT_MAX_BYTES,
        # kafka-python drops any response frame above this (default 1,000,000).
        receive_message_max_bytes=8 * CLIENT_MAX_BYTES,
    )
    assert len(records[1].value) == LARGE_VALUE_SIZE
    assert_same_records(records, recs, unique_topic)


@pytest.mark.parametrize("codec", CODECS)
def test_compression(broker, session_broker, unique_topic, codec):
    """Goal: batches compressed with each codec are stored and fetched intact.

    Method: send 300 compressible records with keys and headers using
    compression_type=<codec> (lingering so they batch), then fetch and compare.
    The segment files must hold the batches with that codec.
    """
    recs = [
        Rec(f"k{i}".encode(), compressible_value(i), [("i", str(i).encode())], BASE_TS + i)
        for i in range(300)
    ]
    p = make_producer(broker, compression_type=codec, linger_ms=50)
    try:
        meta = produce(p, unique_topic, recs)
    finally:
        p.close(TIMEOUT)
    assert [m.offset for m in meta] == list(range(300))
    assert_stored_with_codec(session_broker.data_dir, unique_topic, codec, len(recs))
    records = consume_from(broker, unique_topic, 0, 0, len(recs))
    assert_same_records(records, recs, unique_topic)


def test_order_within_partition(broker, session_broker, unique_topic):
    """Goal: many records in many batches come back in offset order, no gaps or duplicates.

    Method: send 2,000 records to partition 0 in 8 flushed rounds of 250 with
    batch_size=4096 (so many batches); values encode the sequence number. Fetch
    from 0 and require offset == sequence for all.
    """
    n = 2000
    p = make_producer(broker, batch_size=4096, linger_ms=2)
    meta = []
    try:
        for start in range(0, n, 250):
            meta += produce(p, unique_topic, [Rec(b"order", f"{i:06d}".encode()) for i in range(start, start + 250)], partition=0)
    finally:
        p.close(TIMEOUT)
    assert [(m.partition, m.offset) for m in meta] == [(0, i) for i in range(n)]
    assert len(stored_batches(session_broker.data_dir, unique_topic)) >= 8, "expected several batches"
    records = consume_from(broker, unique_topic, 0, 0, n)
    assert [r.offset for r in records] == list(range(n))
    assert [r.value for r in records] == [f"{i:06d}".encode() for i in range(n)]


def test_beginning_and_end_offsets(broker, unique_topic):
    """Goal: ListOffsets earliest/latest track the log.

    Method: send 10 records, require beginning_offsets 0 and end_offsets 10;
    send 5 more and require 0 and 15.
    """
    p = make_producer(broker)
    c = make_consumer(broker)
    tp = TopicPartition(unique_topic, 0)
    try:
        for total, batch in ((10, 10), (15, 5)):
            produce(p, unique_topic, [Rec(None, b"v%d" % i) for i in range(batch)])
            assert c.beginning_offsets([tp]) == {tp: 0}
            assert c.end_offsets([tp]) == {tp: total}
    finally:
        p.close(TIMEOUT)
        c.close()


def test_offsets_for_times(broker, unique_topic):
    """Goal: offsets_for_times returns the first offset whose timestamp is >= the target.

    Method: send 5 records (flushed one by one) with CreateTimes T+1000*i; query
    timestamps before, at, between and after them; expect the exact offset and
    timestamp, and None past the end.
    """
    step = 1000
    p = make_producer(broker)
    try:
        for i in range(5):
            produce(p, unique_topic, [Rec(b"k", b"v%d" % i, [], BASE_TS + step * i)])
    finally:
        p.close(TIMEOUT)
    c = make_consumer(broker)
    tp = TopicPartition(unique_topic, 0)
    try:
        for what, ts, expected in offsets_for_times_cases(BASE_TS, step):
            res = c.offsets_for_times({tp: ts})[tp]
            if expected is None:
                assert res is None, f"{what}: got {res}, want None"
            else:
                assert res is not None, f"{what}: got None, want offset {expected}"
                assert (res.offset, res.timestamp) == (expected, BASE_TS + step * expected), what
    finally:
        c.close()


def test_consume_from_middle(broker, unique_topic):
    """Goal: a consumer positioned at offset k starts exactly at k.

    Method: send 20 records, assign partition 0 and seek to 7; the records
    received must be offsets 7..19 with the matching values.
    """
    recs = [Rec(b"k%d" % i, b"value-%d" % i) for i in range(20)]
    p = make_producer(broker)
    try:
        produce(p, unique_topic, recs)
    finally:
        p.close(TIMEOUT)
    records = consume_from(broker, unique_topic, 0, 7, 13)
    assert records[0].offset == 7
    assert_same_records(records, recs[7:], unique_topic, first_offset=7)


def test_multiple_partitions(broker, unique_topic):
    """Goal: a 3-partition topic created with KafkaAdminClient keeps partitions apart.

    Method: KafkaAdminClient.create_topics with 3 partitions (error code 0);
    the consumer's metadata must show partitions {0, 1, 2}. Send 10 records to each partition
    explicitly (metadata: that partition, offsets 0..9), then fetch each
    partition alone and find exactly its own records.
    """
    admin = KafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=30000)
    try:
        resp = admin.create_topics([NewTopic(unique_topic, num_partitions=3, replication_factor=1)], timeout_ms=10000)
        assert [tuple(e[:2]) for e in resp.topic_errors] == [(unique_topic, 0)]
    finally:
        admin.close()

    c = make_consumer(broker)
    try:
        assert wait_until(lambda: c.partitions_for_topic(unique_topic), TIMEOUT) == {0, 1, 2}
    finally:
        c.close()

    p = make_producer(broker)
    by_part = {}
    try:
        for part in range(3):
            recs = [Rec(b"k%d" % i, f"p{part}-{i}".encode()) for i in range(10)]
            meta = produce(p, unique_topic, recs, partition=part)
            assert [(m.partition, m.offset) for m in meta] == [(part, i) for i in range(10)]
            by_part[part] = recs
    finally:
        p.close(TIMEOUT)
    for part in range(3):
        records = consume_from(broker, unique_topic, part, 0, 10)
        assert_same_records(records, by_part[part], unique_topic, partition=part)


@pytest.mark.parametrize("acks", [0, 1, "all"], ids=["acks0", "acks1", "acksall"])
def test_acks(broker, unique_topic, acks):
    """Goal: producing with acks=0, 1 and all stores the records.

    Method: send 50 records with the given acks; with acks 1/all the metadata
    carries offsets 0..49 (acks=0 gives -1). Then fetch, waiting, until all 50
    arrive in order.
    """
    recs = [Rec(b"k", b"acks-%s-%d" % (str(acks).encode(), i)) for i in range(50)]
    # kafka-python 2.3 queues an acks=0 Produce request but only writes it to the
    # socket when another request goes out on that connection (client-side); a
    # short metadata refresh interval provides one, and the producer stays open
    # until the records are read back.
    p = make_producer(broker, acks=acks, metadata_max_age_ms=1000)
    try:
        meta = produce(p, unique_topic, recs)
        if acks == 0:
            assert all(m.offset == -1 for m in meta)
        else:
            assert [m.offset for m in meta] == list(range(50))
        records = consume_from(broker, unique_topic, 0, 0, 50)
    finally:
        p.close(TIMEOUT)
    assert_same_records(records, recs, unique_topic)



def test_delete_topic(broker, unique_topic):
    """Goal: KafkaAdminClient.delete_topics removes a topic from metadata.

    Method: create a topic (error code 0), see it in KafkaConsumer.topics()
    (a fresh full Metadata request each call), delete it (error code 0), and
    require it to disappear from topics() (polled for up to 30 s).
    """
    admin = KafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=30000)
    c = make_consumer(broker)
    try:
        resp = admin.create_topics([NewTopic(unique_topic, num_partitions=1, replication_factor=1)], timeout_ms=10000)
        assert [tuple(e[:2]) for e in resp.topic_errors] == [(unique_topic, 0)]
        wait_until(lambda: unique_topic in c.topics(), TIMEOUT, what="created topic listed")
        resp = admin.delete_topics([unique_topic], timeout_ms=10000)
        assert [tuple(e[:2]) for e in resp.topic_error_codes] == [(unique_topic, 0)]
        wait_until(lambda: unique_topic not in c.topics(), TIMEOUT, what="deleted topic gone")
    finally:
        c.close()
        admin.close()


def test_admin_metadata_views(broker, unique_topic):
    """Goal: KafkaAdminClient's metadata calls work: list_topics, describe_topics, describe_cluster.

    Method: create a 2-partition topic, then require list_topics() to contain
    it, describe_topics([topic]) to show partitions 0 and 1 led by node 1, and
    describe_cluster() to name node 1 as controller. These send Metadata v8
    with include_cluster_authorized_operations / include_topic_authorized_operations
    set, so the broker must fill in the authorized-operations bit sets.
    """
    admin = KafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=30000)
    try:
        admin.create_topics([NewTopic(unique_topic, num_partitions=2, replication_factor=1)], timeout_ms=10000)
        assert unique_topic in admin.list_topics()
        [topic] = admin.describe_topics([unique_topic])
        assert topic["error_code"] == 0
        assert sorted((p["partition"], p["leader"]) for p in topic["partitions"]) == [(0, 1), (1, 1)]
        cluster = admin.describe_cluster()
        assert cluster["controller_id"] == 1
        assert [b["node_id"] for b in cluster["brokers"]] == [1]
    finally:
        admin.close()
