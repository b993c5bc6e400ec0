"""kcat (librdkafka with OpenSSL) against Runnel's TLS and SASL listeners.

A TLS round trip; mutual TLS with and without a client certificate; SASL
PLAIN over SASL_SSL with the right and a wrong password; a plaintext kcat on
a TLS port is refused while the broker keeps serving. Certificates come from
test_tls.py's `certs` fixture (a CA made with the `openssl` command).
"""

from __future__ import annotations

import shutil

import pytest

from test_kcat import kcat
from test_tls import _listeners, certs  # noqa: F401 (certs is a fixture)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command makes the test CA")

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_alice="alice-secret";')
LINES = [f"k{i}:value {i}" for i in range(20)]


def _round_trip(addr: str, topic: str, *security: str) -> None:
    """Produces LINES with kcat through `addr` and reads them back."""
    kcat("-P", "-b", addr, "-t", topic, "-K:", "-X", "enable.idempotence=false", *security,
         stdin="".join(line + "\n" for line in LINES))
    out = kcat("-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k:%s\n", *security).stdout
    assert out.splitlines() == LINES


def _refused(addr: str, *security: str) -> str:
    """Runs a kcat metadata listing that must fail; its stderr."""
    proc = kcat("-L", "-b", addr, "-m", "5", *security, check=False)
    assert proc.returncode != 0, f"kcat -L through {addr} succeeded:\n{proc.stdout}"
    return proc.stderr


def test_kcat_tls_round_trip_and_plaintext_refused(broker_factory, certs):  # noqa: F811
    """Goal: kcat produces and consumes over TLS, and a plaintext kcat on the TLS port fails cleanly.

    Method: a broker with PLAINTEXT and SSL listeners; kcat with
    security.protocol=SSL trusting the test CA round-trips 20 keyed lines;
    kcat without TLS on the SSL port gets no metadata, and the plaintext
    listener still serves kcat afterwards.
    """
    b = broker_factory(settings={
        "listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        "ssl.keystore.location": certs["keystore"],
    })
    addrs = _listeners(b)
    ssl = ("-X", "security.protocol=SSL", "-X", f"ssl.ca.location={certs['ca']}")
    _round_trip(addrs["SSL"], "kcat-tls", *ssl)
    _refused(addrs["SSL"])
    assert "kcat-tls" in kcat("-L", "-b", addrs["PLAINTEXT"], "-m", "10").stdout


def test_kcat_mutual_tls_with_and_without_certificate(broker_factory, certs):  # noqa: F811
    """Goal: with ssl.client.auth=required kcat works with a client certificate from the CA and is refused without.

    Method: kcat with ssl.certificate.location/ssl.key.location round-trips;
    kcat with only the CA cannot list metadata.
    """
    b = broker_factory(settings={
        "listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        "ssl.keystore.location": certs["keystore"],
        "ssl.truststore.location": certs["ca"],
        "ssl.client.auth": "required",
    })
    addr = _listeners(b)["SSL"]
    ca = ("-X", "security.protocol=SSL", "-X", f"ssl.ca.location={certs['ca']}")
    cert = ("-X", f"ssl.certificate.location={certs['client_cert']}", "-X", f"ssl.key.location={certs['client_key']}")
    _round_trip(addr, "kcat-mtls", *ca, *cert)
    _refused(addr, *ca)


def test_kcat_sasl_plain_over_sasl_ssl(broker_factory, certs):  # noqa: F811
    """Goal: kcat authenticates with SASL PLAIN over TLS; a wrong password is refused with the broker's message.

    Method: a SASL_SSL listener with one PLAIN user; kcat round-trips with
    the right password; with a wrong one, kcat -L fails and reports the
    authentication failure.
    """
    b = broker_factory(settings={
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
        "ssl.keystore.location": certs["keystore"],
        "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
    })
    addr = _listeners(b)["SASL_SSL"]

    def sasl(password: str) -> tuple[str, ...]:
        return ("-X", "security.protocol=SASL_SSL", "-X", f"ssl.ca.location={certs['ca']}",
                "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=alice", "-X", f"sasl.password={password}")

    _round_trip(addr, "kcat-sasl", *sasl("alice-secret"))
    stderr = _refused(addr, *sasl("wrong"))
    assert "Authentication failed" in stderr or "SASL authentication error" in stderr, stderr
