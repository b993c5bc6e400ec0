"""SASL/SCRAM-SHA-256 and SCRAM-SHA-512 with confluent-kafka, kafka-python,
aiokafka and kcat: the right and a wrong password on a SCRAM-only
SASL_PLAINTEXT listener, confluent-kafka on SASL_SSL (CA made with the
`openssl` command, as in test_tls.py), and confluent-kafka's AdminClient
setting, describing and deleting credentials (AlterUserScramCredentials,
DescribeUserScramCredentials).

Each broker runs a PLAINTEXT listener (the one the fixtures wait on, and where
the first users are created) and a SASL listener on port 0, read from the
broker's "listener bound" log line.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion,
                                   UserScramCredentialUpsertion)

from test_kcat import kcat
from test_sasl import _ck_round_trip
from test_tls import _listeners, certs  # noqa: F401 (certs is a fixture)

TIMEOUT = 30.0
MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-512"]
USERS = {"SCRAM-SHA-256": ("alice", "alice-secret"), "SCRAM-SHA-512": ("bob", "bob-secret")}
SCRAM_ONLY = "SCRAM-SHA-256,SCRAM-SHA-512"


def _mechanism(name: str) -> ScramMechanism:
    return ScramMechanism.SCRAM_SHA_256 if name == "SCRAM-SHA-256" else ScramMechanism.SCRAM_SHA_512


def _alter(bootstrap: str, alterations: list) -> dict:
    """Runs AlterUserScramCredentials; user -> None or the exception."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    out = {}
    for user, future in admin.alter_user_scram_credentials(alterations, request_timeout=TIMEOUT).items():
        try:
            out[user] = future.result(TIMEOUT)
        except KafkaException as e:
            out[user] = e
    return out


def _create_users(bootstrap: str) -> None:
    upsertions = [UserScramCredentialUpsertion(user, ScramCredentialInfo(_mechanism(m), 4096), password.encode())
                  for m, (user, password) in USERS.items()]
    assert _alter(bootstrap, upsertions) == {"alice": None, "bob": None}


def _start(broker_factory, protocol: str = "SASL_PLAINTEXT", **extra) -> str:
    lower = protocol.lower()
    b = broker_factory(settings={
        "listeners": f"PLAINTEXT://127.0.0.1:0,{protocol}://127.0.0.1:0",
        f"listener.name.{lower}.sasl.enabled.mechanisms": SCRAM_ONLY,
        **extra,
    })
    _create_users(b.bootstrap)
    return _listeners(b)[protocol]


@pytest.fixture
def scram_broker(broker_factory) -> str:
    return _start(broker_factory)


def _ck(addr: str, mechanism: str, password: str | None = None, protocol: str = "SASL_PLAINTEXT", **extra) -> dict:
    user, right = USERS[mechanism]
    return {"bootstrap.servers": addr, "security.protocol": protocol, "sasl.mechanisms": mechanism,
            "sasl.username": user, "sasl.password": password or right, **extra}


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_kafka_scram_right_and_wrong_password(scram_broker, mechanism):
    """Goal: librdkafka logs in with SCRAM and produces and consumes; a wrong password is refused.

    Method: credentials set with AlterUserScramCredentials on the PLAINTEXT
    listener; a round trip on the SCRAM-only listener; an AdminClient with a
    wrong password gets the broker's generic message through its error callback.
    """
    _ck_round_trip(_ck(scram_broker, mechanism), f"scram-ck-{mechanism.lower()}")
    errors = []
    admin = AdminClient(_ck(scram_broker, mechanism, "wrong", error_cb=lambda e: errors.append(str(e))))
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=3)
    admin.poll(1)
    assert any("Authentication failed" in e for e in errors), errors


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafka_python_scram_right_and_wrong_password(scram_broker, mechanism):
    """Goal: kafka-python's SCRAM client logs in and produces; a wrong password never connects.

    Method: a KafkaProducer with each password; with the wrong one the producer
    finds no broker it can talk to within its bootstrap timeout.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    user, password = USERS[mechanism]
    conf = dict(bootstrap_servers=scram_broker, security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                sasl_plain_username=user)
    p = KafkaProducer(**conf, sasl_plain_password=password)
    p.send("scram-kp", b"hello").get(timeout=TIMEOUT)
    p.close()
    with pytest.raises(KafkaError):
        bad = KafkaProducer(**conf, sasl_plain_password="wrong", api_version_auto_timeout_ms=3000,
                            max_block_ms=3000)
        try:
            bad.send("scram-kp", b"never").get(timeout=5)
        finally:
            bad.close(timeout=1)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_aiokafka_scram_right_and_wrong_password(scram_broker, mechanism):
    """Goal: aiokafka's SCRAM client logs in and produces; a wrong password fails start()."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    user, password = USERS[mechanism]

    async def run():
        conf = dict(bootstrap_servers=scram_broker, security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                    sasl_plain_username=user)
        p = AIOKafkaProducer(**conf, sasl_plain_password=password)
        await p.start()
        await p.send_and_wait("scram-aio", b"hello")
        await p.stop()
        bad = AIOKafkaProducer(**conf, sasl_plain_password="wrong", request_timeout_ms=5000)
        with pytest.raises(KafkaError):
            await bad.start()
        await bad.stop()

    asyncio.run(run())


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kcat_scram_right_and_wrong_password(scram_broker, unique_topic, mechanism):
    """Goal: kcat produces and consumes over SCRAM; with a wrong password it fails."""
    user, password = USERS[mechanism]
    auth = ["-X", "security.protocol=SASL_PLAINTEXT", "-X", f"sasl.mechanisms={mechanism}",
            "-X", f"sasl.username={user}"]
    kcat("-P", "-b", scram_broker, "-t", unique_topic, *auth, "-X", f"sasl.password={password}",
         "-X", "enable.idempotence=false", stdin="one\ntwo\n")
    out = kcat("-C", "-b", scram_broker, "-t", unique_topic, *auth, "-X", f"sasl.password={password}",
               "-o", "beginning", "-e", "-q").stdout
    assert out.splitlines() == ["one", "two"]
    bad = kcat("-L", "-b", scram_broker, *auth, "-X", "sasl.password=wrong", "-m", "3", check=False)
    assert bad.returncode != 0
    assert "Authentication failed" in bad.stderr, bad.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command makes the test CA")
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_kafka_scram_over_sasl_ssl(broker_factory, certs, mechanism):  # noqa: F811
    """Goal: SCRAM works inside TLS on a SASL_SSL listener."""
    addr = _start(broker_factory, "SASL_SSL", **{"ssl.keystore.location": certs["keystore"]})
    conf = _ck(addr, mechanism, protocol="SASL_SSL", **{"ssl.ca.location": certs["ca"]})
    _ck_round_trip(conf, f"scram-ssl-{mechanism.lower()}")


def test_admin_client_sets_describes_and_deletes_credentials(broker_factory):
    """Goal: confluent-kafka's AdminClient round trip of SCRAM credentials, with Kafka's per-user errors.

    Method: on a fresh broker's PLAINTEXT listener, set two mechanisms for one
    user and refuse too few iterations; describe all and one user; describe an
    unknown user (RESOURCE_NOT_FOUND); delete one mechanism and see it gone;
    the deleted credential no longer logs in on the SCRAM listener.
    """
    b = broker_factory(settings={
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms": SCRAM_ONLY,
    })
    sasl = _listeners(b)["SASL_PLAINTEXT"]
    results = _alter(b.bootstrap, [
        UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"c-pw"),
        UserScramCredentialUpsertion("dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 100), b"d-pw"),
    ])
    assert results["carol"] is None
    assert "UNACCEPTABLE_CREDENTIAL" in str(results["dave"]) or "iterations" in str(results["dave"]), results
    assert _alter(b.bootstrap, [UserScramCredentialUpsertion(
        "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"c-pw", salt=b"fixed salt")]) == {
            "carol": None}

    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    described = admin.describe_user_scram_credentials(request_timeout=TIMEOUT).result(TIMEOUT)
    assert list(described) == ["carol"]
    infos = sorted((i.mechanism, i.iterations) for i in described["carol"].scram_credential_infos)
    assert infos == sorted([(ScramMechanism.SCRAM_SHA_256, 4096), (ScramMechanism.SCRAM_SHA_512, 8192)])
    futures = admin.describe_user_scram_credentials(["carol", "nobody"], request_timeout=TIMEOUT)
    assert len(futures["carol"].result(TIMEOUT).scram_credential_infos) == 2
    with pytest.raises(KafkaException) as unknown:
        futures["nobody"].result(TIMEOUT)
    assert "RESOURCE_NOT_FOUND" in str(unknown.value) or "does not exist" in str(unknown.value)

    carol = {"bootstrap.servers": sasl, "security.protocol": "SASL_PLAINTEXT", "sasl.username": "carol",
             "sasl.password": "c-pw"}
    _ck_round_trip({**carol, "sasl.mechanisms": "SCRAM-SHA-256"}, "scram-admin-256")
    assert _alter(b.bootstrap, [UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256)]) == {
        "carol": None}
    left = admin.describe_user_scram_credentials(["carol"], request_timeout=TIMEOUT)["carol"].result(TIMEOUT)
    assert [(i.mechanism, i.iterations) for i in left.scram_credential_infos] == [(ScramMechanism.SCRAM_SHA_512,
                                                                                  8192)]
    refused = AdminClient({**carol, "sasl.mechanisms": "SCRAM-SHA-256"})
    with pytest.raises(KafkaException):
        refused.list_topics(timeout=3)
    _ck_round_trip({**carol, "sasl.mechanisms": "SCRAM-SHA-512"}, "scram-admin-512")
