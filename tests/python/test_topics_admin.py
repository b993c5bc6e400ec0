"""Topic administration against Runnel: CreateTopics, DeleteTopics and auto-creation."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from runnel_helpers import wait_until

TIMEOUT = 30.0


def topic_names(admin: AdminClient) -> set[str]:
    """Topics from a full Metadata request (which never auto-creates)."""
    return set(admin.list_topics(timeout=TIMEOUT).topics)


def error_code(future) -> int:
    try:
        future.result(TIMEOUT)
    except KafkaException as e:
        return e.args[0].code()
    return KafkaError.NO_ERROR


def test_delete_topic(broker, unique_topic):
    """Goal: DeleteTopics removes a topic from metadata.

    Method: create a 2-partition topic with AdminClient.create_topics, see it in
    metadata, delete it with AdminClient.delete_topics, then require it to be
    absent from a full Metadata response (polled for up to 30 s).
    """
    admin = AdminClient({"bootstrap.servers": broker})
    admin.create_topics([NewTopic(unique_topic, num_partitions=2, replication_factor=1)])[unique_topic].result(TIMEOUT)
    wait_until(lambda: unique_topic in topic_names(admin), TIMEOUT, what="created topic in metadata")

    admin.delete_topics([unique_topic], operation_timeout=10)[unique_topic].result(TIMEOUT)
    wait_until(lambda: unique_topic not in topic_names(admin), TIMEOUT, what="deleted topic gone from metadata")


def test_create_and_delete_errors(broker, unique_topic):
    """Goal: CreateTopics/DeleteTopics report Kafka's error codes.

    Method: creating an existing topic must fail with TOPIC_ALREADY_EXISTS (36);
    deleting a topic that does not exist must fail with
    UNKNOWN_TOPIC_OR_PARTITION (3); creating with 0 partitions must fail with
    INVALID_PARTITIONS (37).
    """
    admin = AdminClient({"bootstrap.servers": broker})
    admin.create_topics([NewTopic(unique_topic, num_partitions=1, replication_factor=1)])[unique_topic].result(TIMEOUT)

    again = admin.create_topics([NewTopic(unique_topic, num_partitions=1, replication_factor=1)])[unique_topic]
    assert error_code(again) == KafkaError.TOPIC_ALREADY_EXISTS

    missing = unique_topic + "-missing"
    gone = admin.delete_topics([missing], operation_timeout=10)[missing]
    assert error_code(gone) == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert missing not in topic_names(admin)

    bad = unique_topic + "-zero"
    zero = admin.create_topics([NewTopic(bad, num_partitions=0, replication_factor=1)])[bad]
    assert error_code(zero) == KafkaError.INVALID_PARTITIONS


def test_deleted_topic_can_be_recreated_empty(broker, unique_topic):
    """Goal: after DeleteTopics, a topic of the same name starts from an empty log.

    Method: produce 3 records (auto-creating the topic), delete it, create it
    again via CreateTopics and require its high watermark to be 0.
    """
    from confluent_kafka import Consumer, TopicPartition

    p = Producer({"bootstrap.servers": broker, "enable.idempotence": False})
    for i in range(3):
        p.produce(unique_topic, value=b"v%d" % i)
    assert p.flush(TIMEOUT) == 0
    del p  # destroy it, so its metadata refreshes cannot auto-create the topic again

    admin = AdminClient({"bootstrap.servers": broker})
    admin.delete_topics([unique_topic], operation_timeout=10)[unique_topic].result(TIMEOUT)
    wait_until(lambda: unique_topic not in topic_names(admin), TIMEOUT, what="deleted topic gone")
    admin.create_topics([NewTopic(unique_topic, num_partitions=1, replication_factor=1)])[unique_topic].result(TIMEOUT)

    c = Consumer({"bootstrap.servers": broker, "group.id": "runnel-tests-unused-group", "enable.auto.commit": False})
    try:
        wm = c.get_watermark_offsets(TopicPartition(unique_topic, 0), timeout=TIMEOUT, cached=False)
        assert wm == (0, 0)
    finally:
        c.close()
