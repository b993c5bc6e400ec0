"""ACL authorization with confluent-kafka and kafka-python on a SASL_PLAINTEXT
listener: admin is a super user, alice and bob are ordinary users.

Covered: a produce without WRITE fails with TOPIC_AUTHORIZATION_FAILED and
Metadata hides the topic; READ on the topic and the group lets it consume; the AdminClient's create_acls, describe_acls and
delete_acls round trip (confluent-kafka and kafka-python) and the grants take
effect for a client already running; alice may not manage ACLs.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

from test_tls import _listeners

TIMEOUT = 30.0
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret";')


@pytest.fixture
def acl_broker(broker_factory):
    b = broker_factory(settings={
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin",
    })
    return _listeners(b)["SASL_PLAINTEXT"]


def _conf(addr: str, user: str, **extra) -> dict:
    return {"bootstrap.servers": addr, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
            "sasl.username": user, "sasl.password": f"{user}-secret", **extra}


def _admin(addr: str, user: str = "admin") -> AdminClient:
    return AdminClient(_conf(addr, user))


def _produce_error(producer: Producer, topic: str):
    """Produces one record and returns the delivery error (None on success).
    librdkafka refuses at once, with the same error, while it remembers the
    topic as unauthorized."""
    result = []
    try:
        producer.produce(topic, value=b"v", on_delivery=lambda err, msg: result.append(err))
    except KafkaException as e:
        return e.args[0]
    producer.flush(TIMEOUT)
    assert result, "no delivery report"
    return result[0]


def _eventually_produces(producer: Producer, topic: str) -> None:
    """librdkafka learns that the topic is allowed on its next metadata
    refresh (topic.metadata.refresh.interval.ms); the broker decides anew on
    every request."""
    deadline = time.monotonic() + TIMEOUT
    while (err := _produce_error(producer, topic)) is not None:
        assert err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
        assert time.monotonic() < deadline, "the new ACL never took effect"
        time.sleep(0.2)


def _alice_write_orders() -> AclBinding:
    return AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", "*",
                      AclOperation.WRITE, AclPermissionType.ALLOW)


def test_confluent_kafka_acl_round_trip_and_produce(acl_broker):
    admin = _admin(acl_broker)
    for f in admin.create_topics([NewTopic("orders", 1, 1)]).values():
        f.result(TIMEOUT)

    alice = Producer(_conf(acl_broker, "alice", **{"enable.idempotence": False, "message.timeout.ms": 10000,
                                                  "topic.metadata.refresh.interval.ms": 500}))
    err = _produce_error(alice, "orders")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert "orders" not in _admin(acl_broker, "alice").list_topics(timeout=TIMEOUT).topics

    # Create, then see it with an exact and a MATCH filter.
    for f in admin.create_acls([_alice_write_orders()]).values():
        assert f.result(TIMEOUT) is None
    exact = AclBindingFilter(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    assert admin.describe_acls(exact).result(TIMEOUT) == [_alice_write_orders()]
    match = AclBindingFilter(ResourceType.ANY, "orders", ResourcePatternType.MATCH, "User:alice", None,
                             AclOperation.ANY, AclPermissionType.ANY)
    assert admin.describe_acls(match).result(TIMEOUT) == [_alice_write_orders()]

    # The producer that was refused now succeeds; Metadata shows the topic.
    _eventually_produces(alice, "orders")
    assert "orders" in _admin(acl_broker, "alice").list_topics(timeout=TIMEOUT).topics

    # READ on the topic and the group lets alice consume what she wrote.
    read_acls = [
        AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", "*",
                   AclOperation.READ, AclPermissionType.ALLOW),
        AclBinding(ResourceType.GROUP, "alice-", ResourcePatternType.PREFIXED, "User:alice", "*",
                   AclOperation.READ, AclPermissionType.ALLOW),
    ]
    for f in admin.create_acls(read_acls).values():
        assert f.result(TIMEOUT) is None
    consumer = Consumer(_conf(acl_broker, "alice", **{"group.id": "alice-readers", "enable.auto.commit": False}))
    consumer.assign([TopicPartition("orders", 0, 0)])
    m = consumer.poll(TIMEOUT)
    assert m is not None and m.error() is None and m.value() == b"v", m and m.error()
    consumer.close()
    for f in admin.delete_acls([AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:alice", None,
                                                 AclOperation.READ, AclPermissionType.ANY)]).values():
        assert len(f.result(TIMEOUT)) == 2

    # alice may not manage ACLs (ALTER on the cluster).
    alice_admin = _admin(acl_broker, "alice")
    with pytest.raises(KafkaException) as denied:
        for f in alice_admin.create_acls([_alice_write_orders()]).values():
            f.result(TIMEOUT)
    assert denied.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED

    # Delete by filter: the deleted binding comes back, and produce fails again.
    deleted = admin.delete_acls([exact])
    assert [b for f in deleted.values() for b in f.result(TIMEOUT)] == [_alice_write_orders()]
    assert admin.describe_acls(exact).result(TIMEOUT) == []
    err = _produce_error(alice, "orders")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err


def test_invalid_acls_are_refused(acl_broker):
    admin = _admin(acl_broker)
    cluster_with_wrong_name = AclBinding(ResourceType.BROKER, "not-kafka-cluster", ResourcePatternType.LITERAL,
                                         "User:alice", "*", AclOperation.ALTER, AclPermissionType.ALLOW)
    with pytest.raises(KafkaException) as refused:
        for f in admin.create_acls([cluster_with_wrong_name]).values():
            f.result(TIMEOUT)
    assert refused.value.args[0].code() == KafkaError.INVALID_REQUEST


def test_kafka_python_acl_round_trip(acl_broker):
    from kafka import KafkaAdminClient
    from kafka.admin import ACL, ACLFilter, ACLOperation, ACLPermissionType, ResourcePattern, ResourcePatternFilter
    from kafka.admin import ResourceType as KResourceType
    from kafka.admin.acl_resource import ACLResourcePatternType

    admin = KafkaAdminClient(bootstrap_servers=acl_broker, security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="PLAIN", sasl_plain_username="admin",
                             sasl_plain_password="admin-secret")
    try:
        acl = ACL(principal="User:bob", host="*", operation=ACLOperation.READ,
                  permission_type=ACLPermissionType.ALLOW,
                  resource_pattern=ResourcePattern(KResourceType.TOPIC, "logs-", ACLResourcePatternType.PREFIXED))
        result = admin.create_acls([acl])
        assert not result["failed"], result
        acl_filter = ACLFilter(principal="User:bob", host="*", operation=ACLOperation.ANY,
                               permission_type=ACLPermissionType.ANY,
                               resource_pattern=ResourcePatternFilter(KResourceType.ANY, None,
                                                                      ACLResourcePatternType.ANY))
        acls, error = admin.describe_acls(acl_filter)
        assert error.errno == 0, error
        assert [(a.principal, a.operation, a.resource_pattern.resource_name) for a in acls] == \
            [("User:bob", ACLOperation.READ, "logs-")]
        deleted = admin.delete_acls([acl_filter])
        assert len(deleted[0][1]) == 1, deleted
        acls, _ = admin.describe_acls(acl_filter)
        assert acls == []
    finally:
        admin.close()
