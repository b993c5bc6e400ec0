"""aiokafka (asyncio) against Runnel.

Consumers use group_id=None with assign()/seek() (no group APIs, no commits);
producers run with enable_idempotence=False. Each test is a coroutine run with
asyncio.run under a deadline (see `async_test`).
"""

from __future__ import annotations

import asyncio
import functools
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

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
)

TIMEOUT = 30.0
TEST_DEADLINE = 100.0  # below pytest-timeout's 120 s, so asyncio reports where it hung
CREATE_TIME = 0


def async_test(fn):
    """Run an async test function to completion with asyncio.run and a deadline."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), TEST_DEADLINE))

    return wrapper


# -- client helpers ------------------------------------------------------------


async def start_producer(broker: str, **conf) -> AIOKafkaProducer:
    base = {
        "bootstrap_servers": broker,
        "enable_idempotence": False,
        "acks": "all",
        "linger_ms": 5,
        "request_timeout_ms": 30000,
    }
    base.update(conf)
    p = AIOKafkaProducer(**base)
    await p.start()
    return p


async def start_consumer(broker: str, **conf) -> AIOKafkaConsumer:
    base = {
        "bootstrap_servers": broker,
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "request_timeout_ms": 30000,
    }
    base.update(conf)
    c = AIOKafkaConsumer(**base)
    await c.start()
    return c


async def produce(broker: str, topic: str, recs: list[Rec], partition: int | None = None, **conf):
    """Send recs in order with a new producer; return the RecordMetadata of each."""
    p = await start_producer(broker, **conf)
    try:
        futures = []
        for rec in recs:
            futures.append(
                await p.send(
                    topic,
                    value=rec.value,
                    key=rec.key,
                    partition=partition,
                    timestamp_ms=rec.timestamp,
                    headers=rec.headers or None,
                )
            )
        return await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
    finally:
        await p.stop()


async def consume_from(broker: str, topic: str, partition: int, offset: int, n: int, **conf):
    """Fetch exactly n records from topic/partition starting at offset (and no more)."""
    c = await start_consumer(broker, **conf)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek(tp, offset)
        out = []
        deadline = time.monotonic() + TIMEOUT
        while len(out) < n and time.monotonic() < deadline:
            batches = await c.getmany(tp, timeout_ms=500, max_records=n - len(out))
            out.extend(batches.get(tp, []))
        assert len(out) == n, f"consumed {len(out)} of {n} records within {TIMEOUT}s"
        extra = (await c.getmany(tp, timeout_ms=500)).get(tp, [])
        assert not extra, f"unexpected extra records at offsets {[r.offset for r in extra]}"
        return out
    finally:
        await c.stop()


def assert_same_records(records, recs: list[Rec], topic: str, partition: int = 0, first_offset: int = 0):
    assert len(records) == len(recs)
    for i, (r, rec) in enumerate(zip(records, recs)):
        where = f"record {i}"
        assert (r.topic, r.partition, r.offset) == (topic, partition, first_offset + i), where
        assert r.key == rec.key, where
        assert r.value == rec.value, where
        assert [(k, bytes(v)) for k, v in (r.headers or ())] == rec.headers, where
        if rec.timestamp is not None:
            assert (r.timestamp_type, r.timestamp) == (CREATE_TIME, rec.timestamp), where


def response_errors(response) -> dict[str, int]:
    """{topic: error_code} from a CreateTopics/DeleteTopics response of any version."""
    obj = response.to_object()
    rows = obj.get("topic_errors") or obj.get("topic_error_codes") or obj.get("topics") or obj.get("responses") or []
    out = {}
    for row in rows:
        name = row.get("topic", row.get("name"))
        out[name] = row["error_code"]
    return out


# -- tests ---------------------------------------------------------------------


@async_test
async def test_round_trip_keys_headers_timestamps(broker, unique_topic):
    """Goal: every record field survives a produce/fetch round trip unchanged.

    Method: send records with a key, a null key, an empty key, a null value, an
    empty value, binary/empty/repeated headers and explicit (non-monotonic)
    CreateTimes; check each RecordMetadata (partition 0, offsets 0..n-1,
    ), then fetch from offset 0 and compare every field.
    """
    recs = round_trip_records()
    meta = await produce(broker, unique_topic, recs)
    assert [(m.partition, m.offset) for m in meta] == [(0, i) for i in range(len(recs))]
    # RecordMetadata.timestamp is not checked: aiokafka 0.14 gives every record
    # of a CreateTime batch the first record's timestamp (client-side). The
    # fetched records below carry the real per-record timestamps.
    records = await consume_from(broker, unique_topic, 0, 0, len(recs))
    assert_same_records(records, recs, unique_topic)


@async_test
async def test_large_record(broker, unique_topic):
    """Goal: a ~1 MiB record (just under Kafka's default message.max.bytes) round-trips.

    Method: raise max_request_size and the fetch limits, send one record of
    1 MiB - 1 KiB of random bytes between two small ones, fetch all three.
    """
    recs = [Rec(b"before", b"small"), Rec(b"big", large_value()), Rec(b"after", b"small")]
    meta = await produce(broker, unique_topic, recs, max_request_size=CLIENT_MAX_BYTES)
    assert [m.offset for m in meta] == [0, 1, 2]
    records = await consume_from(
        broker,
        unique_topic,
        0,
        0,
        3,
        max_partition_fetch_bytes=CLIENT_MAX_BYTES,
        fetch_max_bytes=4 * CLIENT_MAX_BYTES,
    )
    assert len(records[1].value) == LARGE_VALUE_SIZE
    assert_same_records(records, recs, unique_topic)


@pytest.mark.parametrize("codec", CODECS)
@async_test
async def test_compression(broker, session_broker, unique_topic, codec):
    """Goal: batches compressed with each codec are stored and fetched intact.

    Method: send 300 compressible records with keys and headers using
    compression_type=<codec> (lingering so they batch), then fetch and compare.
    The segment files must hold the batches with that codec.
    """
    recs = [
        Rec(f"k{i}".encode(), compressible_value(i), [("i", str(i).encode())], BASE_TS + i)
        for i in range(300)
    ]
    meta = await produce(broker, unique_topic, recs, compression_type=codec, linger_ms=50)
    assert [m.offset for m in meta] == list(range(300))
    assert_stored_with_codec(session_broker.data_dir, unique_topic, codec, len(recs))
    records = await consume_from(broker, unique_topic, 0, 0, len(recs))
    assert_same_records(records, recs, unique_topic)


@async_test
async def test_order_within_partition(broker, session_broker, unique_topic):
    """Goal: many records in many batches come back in offset order, no gaps or duplicates.

    Method: send 2,000 records to partition 0 in 8 rounds of 250 with
    max_batch_size=4096 (so many batches); values encode the sequence number.
    Fetch from 0 and require offset == sequence for all.
    """
    n = 2000
    meta = []
    for start in range(0, n, 250):
        recs = [Rec(b"order", f"{i:06d}".encode()) for i in range(start, start + 250)]
        meta += await produce(broker, unique_topic, recs, partition=0, max_batch_size=4096, linger_ms=2)
    assert [(m.partition, m.offset) for m in meta] == [(0, i) for i in range(n)]
    assert len(stored_batches(session_broker.data_dir, unique_topic)) >= 8, "expected several batches"
    records = await consume_from(broker, unique_topic, 0, 0, n)
    assert [r.offset for r in records] == list(range(n))
    assert [r.value for r in records] == [f"{i:06d}".encode() for i in range(n)]


@async_test
async def test_beginning_and_end_offsets(broker, unique_topic):
    """Goal: ListOffsets earliest/latest track the log.

    Method: send 10 records, require beginning_offsets 0 and end_offsets 10;
    send 5 more and require 0 and 15.
    """
    tp = TopicPartition(unique_topic, 0)
    c = await start_consumer(broker)
    try:
        for total, batch in ((10, 10), (15, 5)):
            await produce(broker, unique_topic, [Rec(None, b"v%d" % i) for i in range(batch)])
            assert await c.beginning_offsets([tp]) == {tp: 0}
            assert await c.end_offsets([tp]) == {tp: total}
    finally:
        await c.stop()


@async_test
async def test_offsets_for_times(broker, unique_topic):
    """Goal: offsets_for_times returns the first offset whose timestamp is >= the target.

    Method: send 5 records (one batch each) with CreateTimes T+1000*i; query
    timestamps before, at, between and after them; expect the exact offset and
    timestamp, and None past the end.
    """
    step = 1000
    for i in range(5):
        await produce(broker, unique_topic, [Rec(b"k", b"v%d" % i, [], BASE_TS + step * i)])
    tp = TopicPartition(unique_topic, 0)
    c = await start_consumer(broker)
    try:
        for what, ts, expected in offsets_for_times_cases(BASE_TS, step):
            res = (await c.offsets_for_times({tp: ts}))[tp]
            if expected is None:
                assert res is None, f"{what}: got {res}, want None"
            else:
                assert res is not None, f"{what}: got None, want offset {expected}"
                assert (res.offset, res.timestamp) == (expected, BASE_TS + step * expected), what
    finally:
        await c.stop()


@async_test
async def test_consume_from_middle(broker, unique_topic):
    """Goal: a consumer positioned at offset k starts exactly at k.

    Method: send 20 records, assign partition 0 and seek to 7; the records
    received must be offsets 7..19 with the matching values.
    """
    recs = [Rec(b"k%d" % i, b"value-%d" % i) for i in range(20)]
    await produce(broker, unique_topic, recs)
    records = await consume_from(broker, unique_topic, 0, 7, 13)
    assert records[0].offset == 7
    assert_same_records(records, recs[7:], unique_topic, first_offset=7)


@async_test
async def test_multiple_partitions(broker, unique_topic):
    """Goal: a 3-partition topic created with AIOKafkaAdminClient keeps partitions apart.

    Method: AIOKafkaAdminClient.create_topics with 3 partitions (response error
    code 0); describe_topics must show partitions 0, 1, 2 led by node 1. Send 10
    records to each partition explicitly (metadata: that partition, offsets
    0..9), then fetch each partition alone and find exactly its own records.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=30000)
    await admin.start()
    try:
        resp = await admin.create_topics([NewTopic(unique_topic, num_partitions=3, replication_factor=1)])
        assert response_errors(resp) == {unique_topic: 0}
        [described] = await admin.describe_topics([unique_topic])
        assert described["error_code"] == 0
        parts = {p.get("partition_index", p.get("partition")): p["leader"] for p in described["partitions"]}
        assert parts == {0: 1, 1: 1, 2: 1}
    finally:
        await admin.close()

    for part in range(3):
        recs = [Rec(b"k%d" % i, f"p{part}-{i}".encode()) for i in range(10)]
        meta = await produce(broker, unique_topic, recs, partition=part)
        assert [(m.partition, m.offset) for m in meta] == [(part, i) for i in range(10)]
        records = await consume_from(broker, unique_topic, part, 0, 10)
        assert_same_records(records, recs, unique_topic, partition=part)


@pytest.mark.parametrize("acks", [0, 1, "all"], ids=["acks0", "acks1", "acksall"])
@async_test
async def test_acks(broker, unique_topic, acks):
    """Goal: producing with acks=0, 1 and all stores the records.

    Method: send 50 records with the given acks; with acks 1/all the metadata
    carries offsets 0..49 (acks=0 gives None). Then fetch, waiting, until all
    50 arrive in order.
    """
    recs = [Rec(b"k", b"acks-%s-%d" % (str(acks).encode(), i)) for i in range(50)]
    meta = await produce(broker, unique_topic, recs, acks=acks)
    if acks == 0:
        assert meta == [None] * 50  # aiokafka resolves acks=0 sends with None
    else:
        assert [m.offset for m in meta] == list(range(50))
    records = await consume_from(broker, unique_topic, 0, 0, 50)
    assert_same_records(records, recs, unique_topic)


@async_test
async def test_delete_topic(broker, unique_topic):
    """Goal: AIOKafkaAdminClient.delete_topics removes a topic from metadata.

    Method: create a topic (error code 0), see it in list_topics, delete it
    (error code 0), and require it to be gone from list_topics (polled up to 30 s).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=30000)
    await admin.start()
    try:
        resp = await admin.create_topics([NewTopic(unique_topic, num_partitions=1, replication_factor=1)])
        assert response_errors(resp) == {unique_topic: 0}
        assert unique_topic in await admin.list_topics()
        resp = await admin.delete_topics([unique_topic])
        assert response_errors(resp) == {unique_topic: 0}
        deadline = time.monotonic() + TIMEOUT
        while unique_topic in await admin.list_topics():
            assert time.monotonic() < deadline, "deleted topic still listed"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
