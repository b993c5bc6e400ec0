"""SASL/OAUTHBEARER with confluent-kafka (librdkafka) and its ``oauth_cb``: a
valid, an expired and a wrongly signed token over SASL_PLAINTEXT and
SASL_SSL, and re-authentication (KIP-368) while producing.

Tokens are RS256 JWTs signed with the ``openssl`` command (the venv has no
JWT or crypto package): the test's identity provider is an RSA key whose
JWKS the broker reads from a file (``sasl.oauthbearer.jwks.endpoint.url``).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from test_tls import _listeners, certs  # noqa: F401 (certs is a fixture)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command signs the tokens")

TIMEOUT = 30.0
ISSUER = "https://idp.runnel.test"
AUDIENCE = "runnel"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Idp:
    """An RSA signing key made with openssl, named ``kid``."""

    def __init__(self, d: Path, name: str, kid: str = "py-key-1"):
        self.kid = kid
        self.key = d / f"{name}.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", str(self.key)], check=True, capture_output=True, timeout=60)

    def jwk(self) -> dict:
        out = subprocess.run(["openssl", "rsa", "-in", str(self.key), "-noout", "-modulus"],
                             check=True, capture_output=True, text=True, timeout=60).stdout
        modulus = bytes.fromhex(out.strip().split("=", 1)[1])
        # genpkey's default public exponent is 65537.
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": _b64(modulus), "e": "AQAB"}

    def token(self, sub: str, lifetime_s: int) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        claims = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": min(now, now + lifetime_s),
                  "exp": now + lifetime_s, "scope": "kafka"}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(),
                             check=True, capture_output=True, timeout=60).stdout
        return f"{signing_input}.{_b64(sig)}"


@pytest.fixture(scope="module")
def idp(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("oauth-idp")
    trusted, forger = Idp(d, "trusted"), Idp(d, "forger")
    jwks = d / "jwks.json"
    jwks.write_text(json.dumps({"keys": [trusted.jwk()]}))
    return {"trusted": trusted, "forger": forger, "jwks": str(jwks)}


def _broker(broker_factory, idp, protocol: str, certs=None, **extra):  # noqa: F811
    settings = {
        "listeners": f"PLAINTEXT://127.0.0.1:0,{protocol}://127.0.0.1:0",
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "sasl.oauthbearer.jwks.endpoint.url": "file://" + idp["jwks"],
        "sasl.oauthbearer.expected.audience": AUDIENCE,
        "sasl.oauthbearer.expected.issuer": ISSUER,
        **extra,
    }
    if certs is not None:
        settings["ssl.keystore.location"] = certs["keystore"]
    b = broker_factory(settings=settings)
    return b, _listeners(b)[protocol]


def _conf(addr: str, protocol: str, token: str, certs=None, **extra) -> dict:  # noqa: F811
    # librdkafka refuses an expiry in the past, so the client is told an hour whatever the token says.
    conf = {"bootstrap.servers": addr, "security.protocol": protocol, "sasl.mechanisms": "OAUTHBEARER",
            "oauth_cb": lambda _config: (token, time.time() + 3600), **extra}
    if certs is not None:
        conf["ssl.ca.location"] = certs["ca"]
    return conf


def _round_trip(conf: dict, topic: str) -> None:
    p = Producer({**conf, "enable.idempotence": False})
    for i in range(5):
        p.produce(topic, value=f"v-{i}".encode())
    assert p.flush(TIMEOUT) == 0
    c = Consumer({**conf, "group.id": "oauth-py", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < 5 and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is not None:
            assert m.error() is None, m.error()
            got.append(m.value().decode())
    c.close()
    assert got == [f"v-{i}" for i in range(5)]


def _refused(conf: dict) -> list[str]:
    errors: list[str] = []
    c = Consumer({**conf, "group.id": "oauth-py-refused", "error_cb": lambda e: errors.append(str(e))})
    deadline = time.monotonic() + 10
    while not any("Authentication failed" in e for e in errors) and time.monotonic() < deadline:
        c.poll(0.2)
    c.close()
    return errors


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_confluent_kafka_oauthbearer_tokens(broker_factory, idp, certs, protocol, unique_topic):  # noqa: F811
    tls = certs if protocol == "SASL_SSL" else None
    b, addr = _broker(broker_factory, idp, protocol, tls)
    _round_trip(_conf(addr, protocol, idp["trusted"].token("alice", 3600), tls), unique_topic)
    for token in [idp["trusted"].token("alice", -3600), idp["forger"].token("alice", 3600)]:
        errors = _refused(_conf(addr, protocol, token, tls))
        assert any("Authentication failed" in e for e in errors), errors
    log = b.log_path.read_text(errors="replace")
    assert "SASL OAUTHBEARER authentication failed for user (none): token expired" in log
    assert "SASL OAUTHBEARER authentication failed for user (none): signature does not verify" in log


def _metric(b, name: str) -> float:
    log = b.log_path.read_text(errors="replace")
    http = re.search(r"admin endpoint serving .* http_addr=(\S+)", log).group(1)
    text = urllib.request.urlopen(f"http://{http}/metrics", timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and 'result="success"' in line)


def test_confluent_kafka_reauthenticates_while_producing(broker_factory, idp, unique_topic):
    """connections.max.reauth.ms=2000 and a producer running for 8 s: every record is delivered and the broker
    counts re-authentications (librdkafka re-authenticates at about 90% of the session lifetime)."""
    b, addr = _broker(broker_factory, idp, "SASL_PLAINTEXT", **{"connections.max.reauth.ms": "2000"})
    p = Producer({**_conf(addr, "SASL_PLAINTEXT", idp["trusted"].token("alice", 3600)), "enable.idempotence": False,
                  "linger.ms": 0})
    failures: list[str] = []
    sent, started = 0, time.monotonic()
    while time.monotonic() - started < 8:
        p.produce(unique_topic, value=b"x", on_delivery=lambda err, _m: err and failures.append(str(err)))
        sent += 1
        p.poll(0.1)
    assert p.flush(TIMEOUT) == 0
    assert not failures, failures
    assert _metric(b, "runnel_sasl_reauthentications_total") >= 2
    assert "SASL session expired" not in b.log_path.read_text(errors="replace")


def test_kafka_python_and_aiokafka_oauthbearer(broker_factory, idp, unique_topic):
    """kafka-python and aiokafka authenticate with a token provider; both speak RFC 7628 as librdkafka does.
    (Neither re-authenticates, so no session lifetime is configured.)"""
    import asyncio

    from aiokafka import AIOKafkaProducer
    from aiokafka.abc import AbstractTokenProvider as AioTokenProvider
    from kafka import KafkaProducer
    from kafka.sasl.oauth import AbstractTokenProvider

    _, addr = _broker(broker_factory, idp, "SASL_PLAINTEXT")
    token = idp["trusted"].token("alice", 3600)

    class Provider(AbstractTokenProvider):
        def token(self):
            return token

    p = KafkaProducer(bootstrap_servers=addr, security_protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER",
                      sasl_oauth_token_provider=Provider())
    p.send(unique_topic, b"from kafka-python").get(timeout=TIMEOUT)
    p.close()

    class AioProvider(AioTokenProvider):
        async def token(self):
            return token

    async def run():
        ap = AIOKafkaProducer(bootstrap_servers=addr, security_protocol="SASL_PLAINTEXT",
                              sasl_mechanism="OAUTHBEARER", sasl_oauth_token_provider=AioProvider())
        await ap.start()
        await ap.send_and_wait(unique_topic, b"from aiokafka")
        await ap.stop()

    asyncio.run(run())
