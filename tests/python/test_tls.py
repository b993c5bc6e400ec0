"""TLS listeners with confluent-kafka (librdkafka's OpenSSL) and kafka-python
(Python's ssl module): a round trip over TLS and mutual TLS.

Certificates come from a CA the tests make with the `openssl` command in a
temporary directory; none is stored in the repository. Each broker runs a
PLAINTEXT and an SSL listener on port 0; the SSL listener's bound address is
read from the broker's "listener bound" log line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition

from runnel_helpers import wait_until

TIMEOUT = 30.0
LISTENER_RE = re.compile(r"listener bound listener=(\S+) security_protocol=\S+ addr=(\S+)")

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command makes the test CA")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _issue(d: Path, name: str, subject: str, ext: str) -> None:
    """Writes <name>.pem and <name>.key: a P-256 key and a certificate the CA in d signs."""
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
    (d / f"{name}.ext").write_text(ext)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("tls-certs")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Runnel Python Test CA", cwd=d)
    _issue(d, "server", "/CN=localhost",
           "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _issue(d, "client", "/O=Runnel Tests/CN=py-client",
           "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    keystore = d / "keystore.pem"
    keystore.write_text((d / "server.pem").read_text() + (d / "server.key").read_text())
    return {
        "keystore": str(keystore),
        "ca": str(d / "ca.pem"),
        "client_cert": str(d / "client.pem"),
        "client_key": str(d / "client.key"),
    }


def _listeners(broker) -> dict[str, str]:
    text = broker.log_path.read_text(errors="replace")
    return {m.group(1): m.group(2) for m in LISTENER_RE.finditer(text)}


def _start(broker_factory, certs, **extra):
    settings = {
        "listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        "ssl.keystore.location": certs["keystore"],
        **extra,
    }
    b = broker_factory(settings=settings)
    addrs = _listeners(b)
    assert addrs["PLAINTEXT"] == b.bootstrap
    return b, addrs["SSL"]


def _ck_ssl(addr: str, certs, with_cert: bool = False, **extra) -> dict:
    conf = {"bootstrap.servers": addr, "security.protocol": "SSL", "ssl.ca.location": certs["ca"], **extra}
    if with_cert:
        conf["ssl.certificate.location"] = certs["client_cert"]
        conf["ssl.key.location"] = certs["client_key"]
    return conf


def _ck_round_trip(conf: dict, topic: str, n: int = 10) -> None:
    producer = Producer({**conf, "acks": "all"})
    for i in range(n):
        producer.produce(topic, key=b"k", value=f"tls-{i}".encode())
    assert producer.flush(TIMEOUT) == 0, "undelivered records over TLS"
    consumer = Consumer({**conf, "group.id": f"{topic}-g", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[bytes] = []

        def drained() -> bool:
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                got.append(msg.value())
            return len(got) >= n

        wait_until(drained, timeout=TIMEOUT, what="records consumed over TLS")
        assert got == [f"tls-{i}".encode() for i in range(n)]
    finally:
        consumer.close()


def _kp_round_trip(addr: str, certs, topic: str, with_cert: bool = False, n: int = 10) -> None:
    ssl = {"security_protocol": "SSL", "ssl_cafile": certs["ca"]}
    if with_cert:
        ssl.update(ssl_certfile=certs["client_cert"], ssl_keyfile=certs["client_key"])
    producer = KafkaProducer(bootstrap_servers=addr, acks="all", **ssl)
    for i in range(n):
        producer.send(topic, key=b"k", value=f"kp-{i}".encode()).get(timeout=TIMEOUT)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=addr, enable_auto_commit=False, consumer_timeout_ms=10000, **ssl)
    try:
        tp = KpTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        got = [m.value for _, m in zip(range(n), consumer)]
        assert got == [f"kp-{i}".encode() for i in range(n)]
    finally:
        consumer.close()


def test_tls_round_trip_confluent_and_kafka_python(broker_factory, certs, unique_topic):
    """Goal: both clients produce and consume over TLS, told the SSL listener's address.

    Method: a broker with PLAINTEXT and SSL listeners; confluent-kafka and
    kafka-python each write records over SSL and read them back; Metadata
    over SSL names the SSL port (librdkafka would fail to reconnect otherwise).
    """
    _, ssl_addr = _start(broker_factory, certs)
    conf = _ck_ssl(ssl_addr, certs)
    md = AdminClient(conf).list_topics(timeout=TIMEOUT)
    assert [f"{b.host}:{b.port}" for b in md.brokers.values()] == [ssl_addr]
    _ck_round_trip(conf, unique_topic)
    _kp_round_trip(ssl_addr, certs, unique_topic + "-kp")


def test_mutual_tls_required(broker_factory, certs, unique_topic, monkeypatch):
    """Goal: with ssl.client.auth=required, clients with a certificate from the CA work and
    become User:<subject>; a client without one is refused.

    Method: debug logging of the connection module shows the principal;
    confluent-kafka and kafka-python with a client certificate round-trip;
    confluent-kafka without one cannot fetch metadata.
    """
    monkeypatch.setenv("RUST_LOG", "info,runnel_broker::connection=debug")
    b, ssl_addr = _start(broker_factory, certs, **{"ssl.client.auth": "required", "ssl.truststore.location": certs["ca"]})
    _ck_round_trip(_ck_ssl(ssl_addr, certs, with_cert=True), unique_topic)
    _kp_round_trip(ssl_addr, certs, unique_topic + "-kp", with_cert=True)
    assert "principal=User:CN=py-client,O=Runnel Tests" in b.log_path.read_text(errors="replace")

    with pytest.raises(KafkaException):
        AdminClient(_ck_ssl(ssl_addr, certs)).list_topics(timeout=3)
    wait_until(lambda: "TLS handshake failed" in b.log_path.read_text(errors="replace"),
               timeout=10, what="the refused handshake logged")
