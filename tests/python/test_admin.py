"""Admin APIs against Runnel with confluent-kafka, kafka-python and aiokafka.

Covers topic configs at creation, DescribeConfigs (values, sources,
synonyms), IncrementalAlterConfigs and AlterConfigs on topics and on the
broker, CreatePartitions, DeleteRecords, DescribeCluster, DescribeLogDirs,
delete + re-create, config changes taking effect without a restart, and
config changes surviving a restart (clean and SIGKILL).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from runnel_helpers import wait_until

TIMEOUT = 30.0


def admin_for(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create(admin: AdminClient, topic: str, partitions: int = 1, config: dict | None = None) -> None:
    fut = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})])
    fut[topic].result(TIMEOUT)


def describe_topic(admin: AdminClient, topic: str) -> dict:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT)


def describe_broker(admin: AdminClient, name: str = "1") -> dict:
    res = ConfigResource(ResourceType.BROKER, name)
    return admin.describe_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT)


def incremental(admin: AdminClient, rtype, name: str, ops: list[tuple[str, str | None, AlterConfigOpType]]):
    entries = [ConfigEntry(k, v, incremental_operation=op) for k, v, op in ops]
    res = ConfigResource(rtype, name, incremental_configs=entries)
    return admin.incremental_alter_configs([res])[res].result(TIMEOUT)


def set_cluster_default(bootstrap: str, configs: dict) -> None:
    """AlterConfigs on the cluster-default broker resource (name ""), through kafka-python:
    confluent-kafka refuses an empty resource name."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType

    kadmin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        response = kadmin.alter_configs([KConfigResource(ConfigResourceType.BROKER, "", configs=configs)])
        assert [r[0] for r in response.resources] == [0], response
    finally:
        kadmin.close()


def with_aiokafka(bootstrap: str, call):
    """Runs `await call(client)` with a started AIOKafkaAdminClient and returns its result."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def run():
        client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await client.start()
        try:
            return await call(client)
        finally:
            await client.close()

    return asyncio.run(run())


def error_code(fn) -> int:
    try:
        fn()
    except KafkaException as e:
        return e.args[0].code()
    return KafkaError.NO_ERROR


def produce(bootstrap: str, topic: str, partition: int, values: list[bytes]) -> list:
    """Produce with acks=all; returns the delivery errors (None for success)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    results = []
    for v in values:
        producer.produce(topic, v, partition=partition, on_delivery=lambda err, msg: results.append(err))
    producer.flush(TIMEOUT)
    assert len(results) == len(values)
    return results


def consume(bootstrap: str, topic: str, partition: int, offset, count: int) -> list:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    )
    consumer.assign([TopicPartition(topic, partition, offset)])
    got = []
    try:
        wait_until(lambda: got.extend(m for m in consumer.consume(count - len(got), 0.5) if not m.error()) or len(got) >= count,
                   TIMEOUT, what=f"{count} records from {topic}[{partition}]")
    finally:
        consumer.close()
    return got


# -- configs -----------------------------------------------------------------


def test_create_with_standard_configs_then_describe(broker, unique_topic):
    """Goal: CreateTopics accepts Kafka's standard topic configs and DescribeConfigs reports them.

    Method: confluent-kafka creates a topic with compression.type, delete.retention.ms and other
    keys Kafka accepts (librdkafka test 0081's set among them); DescribeConfigs must report each
    override with source DYNAMIC_TOPIC_CONFIG and untouched keys with DEFAULT_CONFIG and Kafka's
    default; a bad value fails with INVALID_CONFIG and a message naming the key.
    """
    admin = admin_for(broker)
    overrides = {
        "compression.type": "lz4",
        "delete.retention.ms": "900",
        "min.insync.replicas": "1",
        "min.cleanable.dirty.ratio": "0.3",
        "min.compaction.lag.ms": "10",
        "max.compaction.lag.ms": "100000",
        "unclean.leader.election.enable": "false",
        "segment.jitter.ms": "5",
        "message.timestamp.after.max.ms": "7200000",
        "max.message.bytes": "200000",
    }
    create(admin, unique_topic, 2, overrides)
    configs = describe_topic(admin, unique_topic)
    for key, value in overrides.items():
        assert configs[key].value == value, key
        assert configs[key].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, key
    assert configs["retention.ms"].value == "604800000"
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["remote.storage.enable"].value == "false"
    assert not configs["retention.ms"].is_read_only and not configs["retention.ms"].is_sensitive

    bad = unique_topic + "-bad"
    fut = admin.create_topics([NewTopic(bad, 1, 1, config={"min.cleanable.dirty.ratio": "2"})])[bad]
    with pytest.raises(KafkaException) as info:
        fut.result(TIMEOUT)
    assert info.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert "min.cleanable.dirty.ratio" in info.value.args[0].str()


def test_describe_sources_and_synonyms(broker_factory, unique_topic):
    """Goal: each value's source and synonym chain follows Kafka's precedence.

    Method: a broker with log.retention.ms set on its command line (static); a topic override of
    segment.bytes; a cluster-default dynamic message.max.bytes; then DescribeConfigs with synonyms
    on the topic and the broker, checked key by key (confluent-kafka).
    """
    b = broker_factory(settings={"log.retention.ms": "3600000"})
    admin = admin_for(b.bootstrap)
    create(admin, unique_topic, 1, {"segment.bytes": "1048576"})
    set_cluster_default(b.bootstrap, {"message.max.bytes": "500000"})

    res = ConfigResource(ResourceType.TOPIC, unique_topic)
    # librdkafka always asks for synonyms.
    topic = admin.describe_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT)
    seg = topic["segment.bytes"]
    assert (seg.value, seg.source) == ("1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert [(s.name, s.source) for s in seg.synonyms.values()] == [
        ("segment.bytes", ConfigSource.DYNAMIC_TOPIC_CONFIG.value),
        ("log.segment.bytes", ConfigSource.DEFAULT_CONFIG.value),
    ]
    ret = topic["retention.ms"]
    assert (ret.value, ret.source) == ("3600000", ConfigSource.STATIC_BROKER_CONFIG.value)
    mmb = topic["max.message.bytes"]
    assert (mmb.value, mmb.source) == ("500000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)

    broker_cfg = describe_broker(admin, "1")
    assert broker_cfg["log.retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert broker_cfg["message.max.bytes"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    assert broker_cfg["log.dirs"].is_read_only
    assert not broker_cfg["log.retention.ms"].is_read_only

    unknown = ConfigResource(ResourceType.TOPIC, unique_topic + "-missing")
    fut = admin.describe_configs([unknown], request_timeout=TIMEOUT)[unknown]
    assert error_code(lambda: fut.result(TIMEOUT)) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_incremental_alter_topic_and_broker(broker_factory, unique_topic):
    """Goal: IncrementalAlterConfigs SET, DELETE, APPEND and SUBTRACT on a topic and on the broker.

    Method: confluent-kafka sets retention.ms then deletes it (back to the default source),
    appends compact to cleanup.policy then subtracts delete, sets a per-broker
    log.retention.ms (source DYNAMIC_BROKER_CONFIG, inherited by the topic), and checks that
    bad keys/values get INVALID_CONFIG and read-only broker keys INVALID_REQUEST.
    """
    b = broker_factory()
    admin = admin_for(b.bootstrap)
    create(admin, unique_topic)
    incremental(admin, ResourceType.TOPIC, unique_topic, [("retention.ms", "1000", AlterConfigOpType.SET)])
    assert describe_topic(admin, unique_topic)["retention.ms"].value == "1000"
    incremental(admin, ResourceType.TOPIC, unique_topic, [("retention.ms", None, AlterConfigOpType.DELETE)])
    entry = describe_topic(admin, unique_topic)["retention.ms"]
    assert (entry.value, entry.source) == ("604800000", ConfigSource.DEFAULT_CONFIG.value)

    incremental(admin, ResourceType.TOPIC, unique_topic, [("cleanup.policy", "compact", AlterConfigOpType.APPEND)])
    assert describe_topic(admin, unique_topic)["cleanup.policy"].value == "delete,compact"
    incremental(admin, ResourceType.TOPIC, unique_topic, [("cleanup.policy", "delete", AlterConfigOpType.SUBTRACT)])
    assert describe_topic(admin, unique_topic)["cleanup.policy"].value == "compact"

    incremental(admin, ResourceType.BROKER, "1", [("log.retention.ms", "7200000", AlterConfigOpType.SET)])
    broker_entry = describe_broker(admin)["log.retention.ms"]
    assert (broker_entry.value, broker_entry.source) == ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    topic_entry = describe_topic(admin, unique_topic)["retention.ms"]
    assert (topic_entry.value, topic_entry.source) == ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)

    bad_key = lambda: incremental(admin, ResourceType.TOPIC, unique_topic, [("retention.msx", "1", AlterConfigOpType.SET)])
    assert error_code(bad_key) == KafkaError.INVALID_CONFIG
    bad_value = lambda: incremental(admin, ResourceType.TOPIC, unique_topic, [("retention.ms", "x", AlterConfigOpType.SET)])
    assert error_code(bad_value) == KafkaError.INVALID_CONFIG
    read_only = lambda: incremental(admin, ResourceType.BROKER, "1", [("log.dirs", "/tmp/x", AlterConfigOpType.SET)])
    assert error_code(read_only) == KafkaError.INVALID_REQUEST


def test_config_change_takes_effect_without_restart(broker, unique_topic):
    """Goal: a lowered max.message.bytes applies to the running partition at once.

    Method: a 20 kB record is accepted; after IncrementalAlterConfigs sets the topic's
    max.message.bytes to 1000 the same record fails with MSG_SIZE_TOO_LARGE, while a small one
    still succeeds.
    """
    admin = admin_for(broker)
    create(admin, unique_topic)
    big = bytes(range(256)) * 80
    assert produce(broker, unique_topic, 0, [big]) == [None]
    incremental(admin, ResourceType.TOPIC, unique_topic, [("max.message.bytes", "1000", AlterConfigOpType.SET)])
    # One produce call each: a batch holding both would be refused whole, as Kafka does.
    (error,) = produce(broker, unique_topic, 0, [big])
    assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE, error
    assert produce(broker, unique_topic, 0, [b"small"]) == [None]


def test_alter_configs_replaces_with_kafka_python(broker, unique_topic):
    """Goal: AlterConfigs replaces the whole override set (kafka-python).

    Method: create with two overrides, AlterConfigs with one different key, then DescribeConfigs
    (kafka-python) shows only the new override as a topic config; validate_only changes nothing.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType

    admin = admin_for(broker)
    create(admin, unique_topic, 1, {"retention.ms": "1000", "segment.ms": "100000"})
    kadmin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        kadmin.alter_configs([KConfigResource(ConfigResourceType.TOPIC, unique_topic, configs={"flush.ms": "500"})])
        configs = describe_topic(admin, unique_topic)
        overrides = {k for k, e in configs.items() if e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value}
        assert overrides == {"flush.ms"}
        kadmin.describe_configs([KConfigResource(ConfigResourceType.TOPIC, unique_topic)])
        res = ConfigResource(ResourceType.TOPIC, unique_topic, set_config={"flush.ms": "9"})
        admin.alter_configs([res], validate_only=True)[res].result(TIMEOUT)
        assert describe_topic(admin, unique_topic)["flush.ms"].value == "500"
    finally:
        kadmin.close()


def test_aiokafka_describe_and_alter_configs(broker, unique_topic):
    """Goal: aiokafka's AIOKafkaAdminClient describes and alters topic configs.

    Method: alter_configs sets retention.ms; describe_configs returns the new value in the raw
    response; confluent-kafka confirms the source.
    """
    from aiokafka.admin.config_resource import ConfigResource as AConfigResource, ConfigResourceType

    create(admin_for(broker), unique_topic)

    async def alter_then_describe(client):
        await client.alter_configs([AConfigResource(ConfigResourceType.TOPIC, unique_topic, {"retention.ms": "12345"})])
        responses = await client.describe_configs([AConfigResource(ConfigResourceType.TOPIC, unique_topic)])
        return {e[0]: e[1] for r in responses for res in r.resources for e in res[4]}

    entries = with_aiokafka(broker, alter_then_describe)
    assert entries["retention.ms"] == "12345"
    assert describe_topic(admin_for(broker), unique_topic)["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value


# -- partitions and records -------------------------------------------------


def test_create_partitions_then_produce_and_consume(broker, unique_topic):
    """Goal: CreatePartitions adds partitions that producers and consumers use at once.

    Method: 1 -> 2 partitions with confluent-kafka, 2 -> 3 with kafka-python, 3 -> 4 with aiokafka;
    Metadata shows 4 partitions; a record produced to partition 3 is consumed back; shrinking
    fails with INVALID_PARTITIONS and validate_only creates nothing.
    """
    from aiokafka.admin import NewPartitions as ANewPartitions
    from kafka import KafkaAdminClient
    from kafka.admin import NewPartitions as KNewPartitions

    admin = admin_for(broker)
    create(admin, unique_topic, 1)
    admin.create_partitions([NewPartitions(unique_topic, 2)])[unique_topic].result(TIMEOUT)
    kadmin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        kadmin.create_partitions({unique_topic: KNewPartitions(total_count=3)})
    finally:
        kadmin.close()

    with_aiokafka(broker, lambda c: c.create_partitions({unique_topic: ANewPartitions(total_count=4)}))
    assert len(admin.list_topics(unique_topic, timeout=TIMEOUT).topics[unique_topic].partitions) == 4
    value = uuid.uuid4().bytes
    assert produce(broker, unique_topic, 3, [value]) == [None]
    got = consume(broker, unique_topic, 3, 0, 1)
    assert got[0].value() == value and got[0].partition() == 3

    shrink = admin.create_partitions([NewPartitions(unique_topic, 2)])[unique_topic]
    assert error_code(lambda: shrink.result(TIMEOUT)) == KafkaError.INVALID_PARTITIONS
    admin.create_partitions([NewPartitions(unique_topic, 8)], validate_only=True)[unique_topic].result(TIMEOUT)
    assert len(admin.list_topics(unique_topic, timeout=TIMEOUT).topics[unique_topic].partitions) == 4


def test_delete_records_moves_the_start(broker, unique_topic):
    """Goal: DeleteRecords advances the log start offset for consumers and ListOffsets.

    Method: 10 records; confluent-kafka deletes before offset 4, kafka-python before 6, aiokafka
    before 7; the earliest offset becomes 7 and a consumer from OFFSET_BEGINNING reads offset 7
    first; deleting past the high watermark fails with OFFSET_OUT_OF_RANGE.
    """
    from aiokafka.admin.records_to_delete import RecordsToDelete
    from aiokafka.structs import TopicPartition as ATopicPartition
    from kafka import KafkaAdminClient
    from kafka.structs import TopicPartition as KTopicPartition

    from confluent_kafka import OFFSET_BEGINNING

    admin = admin_for(broker)
    create(admin, unique_topic)
    assert produce(broker, unique_topic, 0, [b"v%d" % i for i in range(10)]) == [None] * 10

    done = admin.delete_records([TopicPartition(unique_topic, 0, 4)])
    result = list(done.values())[0].result(TIMEOUT)
    assert result.low_watermark == 4
    kadmin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        kadmin.delete_records({KTopicPartition(unique_topic, 0): 6})
    finally:
        kadmin.close()

    with_aiokafka(broker, lambda c: c.delete_records({ATopicPartition(unique_topic, 0): RecordsToDelete(before_offset=7)}))
    consumer = Consumer({"bootstrap.servers": broker, "group.id": "unused", "enable.auto.commit": False})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(unique_topic, 0), timeout=TIMEOUT)
        assert (low, high) == (7, 10)
    finally:
        consumer.close()
    got = consume(broker, unique_topic, 0, OFFSET_BEGINNING, 3)
    assert [m.offset() for m in got] == [7, 8, 9]

    past = admin.delete_records([TopicPartition(unique_topic, 0, 11)])
    assert error_code(lambda: list(past.values())[0].result(TIMEOUT)) == KafkaError.OFFSET_OUT_OF_RANGE


def test_delete_and_recreate_at_once(broker, unique_topic):
    """Goal: a deleted topic's name can be created again at once, empty and with new configs.

    Method: create with retention.ms, produce, delete, immediately re-create with 3 partitions and
    no overrides; the new topic has 3 partitions, default retention.ms and no records.
    """
    admin = admin_for(broker)
    create(admin, unique_topic, 1, {"retention.ms": "1000"})
    assert produce(broker, unique_topic, 0, [b"old"]) == [None]
    admin.delete_topics([unique_topic], operation_timeout=10)[unique_topic].result(TIMEOUT)
    create(admin, unique_topic, 3)
    assert len(admin.list_topics(unique_topic, timeout=TIMEOUT).topics[unique_topic].partitions) == 3
    assert describe_topic(admin, unique_topic)["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    consumer = Consumer({"bootstrap.servers": broker, "group.id": "unused"})
    try:
        assert consumer.get_watermark_offsets(TopicPartition(unique_topic, 0), timeout=TIMEOUT) == (0, 0)
    finally:
        consumer.close()


# -- cluster ------------------------------------------------------------------


def test_describe_cluster_with_three_clients(broker):
    """Goal: DescribeCluster names this broker as the only broker and the controller.

    Method: confluent-kafka, kafka-python and aiokafka each describe the cluster; all agree on
    one node with id 1, the bootstrap port, and the same cluster id as Metadata.
    """
    from kafka import KafkaAdminClient

    port = int(broker.rsplit(":", 1)[1])
    admin = admin_for(broker)
    cluster = admin.describe_cluster(request_timeout=TIMEOUT).result(TIMEOUT)
    assert [(n.id, n.port) for n in cluster.nodes] == [(1, port)]
    assert cluster.controller.id == 1
    assert cluster.cluster_id == admin.list_topics(timeout=TIMEOUT).cluster_id

    kadmin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        described = kadmin.describe_cluster()
        assert described["cluster_id"] == cluster.cluster_id
        assert [b["node_id"] for b in described["brokers"]] == [1]
    finally:
        kadmin.close()

    described = with_aiokafka(broker, lambda c: c.describe_cluster())
    assert described["cluster_id"] == cluster.cluster_id
    assert [b["node_id"] for b in described["brokers"]] == [1]


def describe_log_dirs_v1(bootstrap: str):
    """DescribeLogDirs v1 through kafka-python's client. kafka-python only knows v0, which Kafka
    4.x (and Runnel) no longer serve; v1 has the same request and response layout."""
    from kafka import KafkaAdminClient
    from kafka.protocol.api import Request, Response
    from kafka.protocol.types import Array, Boolean, Int16, Int32, Int64, Schema, String

    class DescribeLogDirsResponseV1(Response):
        API_KEY = 35
        API_VERSION = 1
        SCHEMA = Schema(
            ("throttle_time_ms", Int32),
            ("log_dirs", Array(
                ("error_code", Int16),
                ("log_dir", String("utf-8")),
                ("topics", Array(
                    ("name", String("utf-8")),
                    ("partitions", Array(
                        ("partition_index", Int32),
                        ("partition_size", Int64),
                        ("offset_lag", Int64),
                        ("is_future_key", Boolean),
                    )),
                )),
            )),
        )

    class DescribeLogDirsRequestV1(Request):
        API_KEY = 35
        API_VERSION = 1
        RESPONSE_TYPE = DescribeLogDirsResponseV1
        SCHEMA = Schema(("topics", Array(("topic", String("utf-8")), ("partitions", Array(Int32)))))

    kadmin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return kadmin.send_request(DescribeLogDirsRequestV1(topics=None))
    finally:
        kadmin.close()


def test_describe_log_dirs(broker_factory, unique_topic):
    """Goal: DescribeLogDirs reports the data directory and each partition's size.

    Method: a broker with its own data dir; 2 partitions, records in partition 0 only; a
    DescribeLogDirs v1 request for every partition (kafka-python's client) must show the data
    dir's path, partition 0 larger than the records, partition 1 at 0 bytes, and offset lag 0.
    """
    b = broker_factory()
    create(admin_for(b.bootstrap), unique_topic, 2)
    assert produce(b.bootstrap, unique_topic, 0, [b"x" * 1000] * 5) == [None] * 5
    response = describe_log_dirs_v1(b.bootstrap)
    (result,) = response.log_dirs
    error, log_dir, topics = result[0], result[1], result[2]
    assert error == 0
    assert log_dir == str(b.data_dir.resolve())
    sizes = {p[0]: (p[1], p[2]) for name, partitions in topics if name == unique_topic for p in partitions}
    assert sizes[0][0] > 5000 and sizes[1][0] == 0
    assert sizes[0][1] == 0 and sizes[1][1] == 0


# -- persistence --------------------------------------------------------------


@pytest.mark.parametrize("how", ["clean", "sigkill"])
def test_config_changes_survive_restart(broker_factory, unique_topic, how):
    """Goal: topic and broker config changes, new partitions and deleted records survive a restart.

    Method: alter a topic config, a per-broker and a cluster-default broker config, add partitions
    and delete records; stop the broker (SIGTERM, or SIGKILL by its PID), restart it on the same
    data directory, and describe everything again.
    """
    b = broker_factory()
    admin = admin_for(b.bootstrap)
    create(admin, unique_topic, 1)
    incremental(admin, ResourceType.TOPIC, unique_topic, [("retention.ms", "4242", AlterConfigOpType.SET)])
    incremental(admin, ResourceType.BROKER, "1", [("log.retention.ms", "7200000", AlterConfigOpType.SET)])
    set_cluster_default(b.bootstrap, {"num.partitions": "3"})
    admin.create_partitions([NewPartitions(unique_topic, 3)])[unique_topic].result(TIMEOUT)
    assert produce(b.bootstrap, unique_topic, 0, [b"a", b"b", b"c"]) == [None] * 3
    list(admin.delete_records([TopicPartition(unique_topic, 0, 2)]).values())[0].result(TIMEOUT)

    if how == "clean":
        b.stop()
    else:
        b.proc.kill()
        b.proc.wait(TIMEOUT)
    again = broker_factory(data_dir=b.data_dir)
    admin = admin_for(again.bootstrap)
    assert describe_topic(admin, unique_topic)["retention.ms"].value == "4242"
    broker_cfg = describe_broker(admin)
    assert broker_cfg["log.retention.ms"].value == "7200000"
    assert broker_cfg["log.retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert broker_cfg["num.partitions"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    assert len(admin.list_topics(unique_topic, timeout=TIMEOUT).topics[unique_topic].partitions) == 3
    # The dynamic num.partitions applies to auto-created topics.
    auto = unique_topic + "-auto"
    produce(again.bootstrap, auto, -1, [b"x"])
    assert len(admin.list_topics(auto, timeout=TIMEOUT).topics[auto].partitions) == 3
    consumer = Consumer({"bootstrap.servers": again.bootstrap, "group.id": "unused"})
    try:
        assert consumer.get_watermark_offsets(TopicPartition(unique_topic, 0), timeout=TIMEOUT) == (2, 3)
    finally:
        consumer.close()


def test_elect_leaders_and_describe_topics(broker, unique_topic):
    """Goal: ElectLeaders and DescribeTopics answer as Kafka does for a single broker.

    Method: confluent-kafka elect_leaders (preferred) on an existing and a missing partition:
    ELECTION_NOT_NEEDED and UNKNOWN_TOPIC_OR_PART per partition; for all partitions: an empty
    result. describe_topics shows each partition led by broker 1 with ISR [1].
    """
    from confluent_kafka import ElectionType, TopicCollection

    admin = admin_for(broker)
    create(admin, unique_topic, 2)
    result = admin.elect_leaders(
        ElectionType.PREFERRED, [TopicPartition(unique_topic, 0), TopicPartition(unique_topic, 9)]
    ).result(TIMEOUT)
    def code(err) -> int:
        if err is None:
            return KafkaError.NO_ERROR
        return err.code() if isinstance(err, KafkaError) else err.args[0].code()

    codes = {tp.partition: code(err) for tp, err in result.items()}
    assert codes == {0: KafkaError.ELECTION_NOT_NEEDED, 9: KafkaError.UNKNOWN_TOPIC_OR_PART}
    assert admin.elect_leaders(ElectionType.PREFERRED, None).result(TIMEOUT) == {}

    described = admin.describe_topics(TopicCollection([unique_topic]), request_timeout=TIMEOUT)[unique_topic].result(TIMEOUT)
    assert [(p.id, p.leader.id, [n.id for n in p.isr]) for p in described.partitions] == [(0, 1, [1]), (1, 1, [1])]
