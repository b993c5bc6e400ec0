"""SASL/PLAIN with confluent-kafka, kafka-python and aiokafka: the right and a
wrong password on a SASL_PLAINTEXT listener, and confluent-kafka on SASL_SSL
(CA made with the `openssl` command, as in test_tls.py).

Each broker runs a PLAINTEXT listener (the one the fixtures wait on) and a
SASL listener on port 0, read from the broker's "listener bound" log line.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from test_tls import _listeners, certs  # noqa: F401 (certs is a fixture)

TIMEOUT = 30.0
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_alice="alice-secret" user_bob="bob-secret";')


@pytest.fixture
def sasl_broker(broker_factory):
    b = broker_factory(settings={
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
    })
    return _listeners(b)["SASL_PLAINTEXT"]


def _ck(addr: str, password: str, protocol: str = "SASL_PLAINTEXT", **extra) -> dict:
    return {"bootstrap.servers": addr, "security.protocol": protocol, "sasl.mechanisms": "PLAIN",
            "sasl.username": "alice", "sasl.password": password, **extra}


def _ck_round_trip(conf: dict, topic: str) -> None:
    p = Producer({**conf, "enable.idempotence": False})
    for i in range(5):
        p.produce(topic, value=f"v-{i}".encode())
    assert p.flush(TIMEOUT) == 0
    c = Consumer({**conf, "group.id": "sasl-py", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    while len(got) < 5:
        m = c.poll(TIMEOUT)
        assert m is not None and m.error() is None, m and m.error()
        got.append(m.value().decode())
    c.close()
    assert got == [f"v-{i}" for i in range(5)]


def test_confluent_kafka_plain_right_and_wrong_password(sasl_broker):
    _ck_round_trip(_ck(sasl_broker, "alice-secret"), "sasl-ck")
    errors = []
    admin = AdminClient(_ck(sasl_broker, "wrong", error_cb=lambda e: errors.append(str(e))))
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=3)
    admin.poll(1)
    assert any("Authentication failed" in e for e in errors), errors


def test_kafka_python_plain_right_password(sasl_broker):
    # A wrong password is not tested with kafka-python: it retries a failed
    # authentication without raising, so the test would only wait.
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=sasl_broker, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                      sasl_plain_username="alice", sasl_plain_password="alice-secret")
    p.send("sasl-kp", b"hello").get(timeout=TIMEOUT)
    p.close()


def test_aiokafka_plain_right_and_wrong_password(sasl_broker):
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    async def run():
        conf = dict(bootstrap_servers=sasl_broker, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                    sasl_plain_username="alice")
        p = AIOKafkaProducer(**conf, sasl_plain_password="alice-secret")
        await p.start()
        await p.send_and_wait("sasl-aio", b"hello")
        await p.stop()
        bad = AIOKafkaProducer(**conf, sasl_plain_password="wrong", request_timeout_ms=5000)
        with pytest.raises(KafkaError):
            await bad.start()
        await bad.stop()

    asyncio.run(run())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command makes the test CA")
def test_confluent_kafka_plain_over_sasl_ssl(broker_factory, certs):  # noqa: F811
    b = broker_factory(settings={
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
        "ssl.keystore.location": certs["keystore"],
        "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
    })
    addr = _listeners(b)["SASL_SSL"]
    _ck_round_trip(_ck(addr, "alice-secret", "SASL_SSL", **{"ssl.ca.location": certs["ca"]}), "sasl-ssl-ck")
