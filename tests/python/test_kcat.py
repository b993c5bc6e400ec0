"""kcat (the librdkafka command-line client) against Runnel.

kcat is run as a subprocess with a timeout; its consumer mode without -G uses
no consumer group.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from runnel_helpers import assert_stored_with_codec

TIMEOUT = 60


def kcat(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("kcat") or shutil.which("kafkacat")
    if exe is None:
        pytest.fail("kcat is not installed (scripts/test.sh installs it)", pytrace=False)
    proc = subprocess.run(
        [exe, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if check:
        assert proc.returncode == 0, f"kcat {' '.join(args)} exited {proc.returncode}\nstderr:\n{proc.stderr}"
    return proc


LINES = [
    ("k1", "v1"),
    ("k2", "value with spaces"),
    ("k3", "value:with:colons"),
    ("k1", "same key again"),
    ("unicode-ключ", "значение ✓"),
] + [
    # Enough compressible data that librdkafka keeps the compressed batch
    # (it sends a batch uncompressed when compression would not shrink it).
    (f"key-{i:03d}", f"line {i:03d} " + "of a compressible kcat payload " * 8)
    for i in range(100)
]


def produce_lines(broker: str, topic: str, *extra: str):
    data = "".join(f"{k}:{v}\n" for k, v in LINES)
    kcat("-P", "-b", broker, "-t", topic, "-K:", "-X", "enable.idempotence=false", *extra, stdin=data)


def consume_all(broker: str, topic: str, fmt: str = "%k=%s\n") -> str:
    return kcat("-C", "-b", broker, "-t", topic, "-o", "beginning", "-e", "-q", "-f", fmt).stdout


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_and_consume_keyed_lines(broker, session_broker, unique_topic, codec):
    """Goal: kcat's producer and consumer round-trip keyed lines through Runnel.

    Method: `kcat -P -K: -z <codec>` 105 `key:value` lines (values with spaces,
    colons and UTF-8), then `kcat -C -o beginning -e -f '%k=%s\\n'` must print
    them back in order; a second format also checks partition and offsets.
    The segment files must hold the batches with that codec. (Debian's kcat
    links librdkafka 2.0.2, which compresses gzip/snappy/lz4 only if the
    broker's ApiVersions lists Produce v0, as Kafka 4.0 still does.)
    """
    produce_lines(broker, unique_topic, "-z", codec)
    out = consume_all(broker, unique_topic)
    assert out.splitlines() == [f"{k}={v}" for k, v in LINES]
    out = consume_all(broker, unique_topic, "%p:%o:%k\n")
    assert out.splitlines() == [f"0:{i}:{k}" for i, (k, _) in enumerate(LINES)]
    assert_stored_with_codec(session_broker.data_dir, unique_topic, codec, len(LINES), singletons_may_be_plain=True)


def test_metadata_listing_shows_topic(broker, session_broker, unique_topic):
    """Goal: `kcat -L` lists the broker at its bound address and the topic with its partition.

    Method: produce to a new topic, then check the plain `kcat -L -t T` output
    (broker 1 at 127.0.0.1:PORT, the topic with 1 partition led by broker 1)
    and the JSON form `kcat -L -J` (the topic among all topics).
    """
    produce_lines(broker, unique_topic)
    out = kcat("-L", "-b", broker, "-t", unique_topic).stdout
    assert re.search(rf"broker 1 at 127\.0\.0\.1:{session_broker.port}\b", out), out
    assert f'topic "{unique_topic}" with 1 partitions:' in out, out
    assert re.search(r"partition 0, leader 1, replicas: 1, isrs: 1", out), out

    listing = json.loads(kcat("-L", "-J", "-b", broker).stdout)
    assert [b["id"] for b in listing["brokers"]] == [1]
    assert listing["brokers"][0]["name"] == f"127.0.0.1:{session_broker.port}"
    topics = {t["topic"]: t for t in listing["topics"]}
    assert unique_topic in topics
    assert [p["partition"] for p in topics[unique_topic]["partitions"]] == [0]
