"""The `runnel serve` process contract: readiness line, advertised address,
settings from --set, clean shutdown on signals, and data kept across restarts."""

from __future__ import annotations

import signal
import socket
import subprocess

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from runnel_helpers import BASE_TS, wait_until

TIMEOUT = 30.0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_listening_line_and_clean_shutdown(broker_factory, sig):
    """Goal: `runnel serve --listen 127.0.0.1:0` reports its real port and exits 0 on SIGTERM/SIGINT.

    Method: start a broker, check the listening line named a non-zero port that
    accepts TCP connections, send the signal, and require exit status 0 with
    nothing else printed on stdout (RunnelBroker.stop checks both).
    """
    b = broker_factory()
    assert b.port and b.port > 0
    with socket.create_connection(("127.0.0.1", b.port), timeout=5):
        pass
    assert b.stop(sig) == 0
    assert not b.running()


def test_signal_right_after_readiness_line_is_clean(runnel_binary, tmp_path):
    """Goal: once `runnel listening on ...` is printed, SIGTERM always means a clean exit.

    Method: 30 times, start a broker and send it SIGTERM the instant its
    listening line is read; every run must exit with status 0 (a death by the
    signal's default action shows as -15). Only the started PID is signalled.
    """
    codes = []
    for i in range(30):
        proc = subprocess.Popen(
            [runnel_binary, "serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data-dir", str(tmp_path / f"d{i}")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            line = proc.stdout.readline()
            assert line.startswith(b"runnel listening on "), line
            proc.send_signal(signal.SIGTERM)
            codes.append(proc.wait(30))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            proc.stdout.close()
    assert codes == [0] * len(codes), f"exit statuses after an immediate SIGTERM: {codes}"


def test_metadata_advertises_bound_address(broker, session_broker):
    """Goal: Metadata lists exactly one broker, node 1, at the bound address, and it is the controller.

    Method: AdminClient.list_topics on the session broker; compare brokers and controller id.
    """
    md = AdminClient({"bootstrap.servers": broker}).list_topics(timeout=TIMEOUT)
    assert {n: (b.host, b.port) for n, b in md.brokers.items()} == {1: ("127.0.0.1", session_broker.port)}
    assert md.controller_id == 1


def test_num_partitions_setting_applies_to_auto_created_topics(broker_factory, unique_topic):
    """Goal: `--set num.partitions=3` makes auto-created topics get 3 partitions.

    Method: start a broker with num.partitions=3, produce one record to a new
    topic (Metadata auto-creates it), then require 3 partitions in metadata.
    """
    b = broker_factory(settings={"num.partitions": 3})
    p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": False})
    p.produce(unique_topic, value=b"hello", partition=0)
    assert p.flush(TIMEOUT) == 0
    admin = AdminClient({"bootstrap.servers": b.bootstrap})

    def partitions():
        t = admin.list_topics(timeout=TIMEOUT).topics.get(unique_topic)
        return t and sorted(t.partitions)

    assert wait_until(partitions, TIMEOUT, what="auto-created topic") == [0, 1, 2]


def test_restart_keeps_data(broker_factory, unique_topic):
    """Goal: acknowledged records survive a clean restart on the same data directory.

    Method: start a broker, produce 200 records (acks=all) with keys, headers
    and CreateTimes, SIGTERM it, start a new broker on the same --data-dir, and
    require watermarks (0, 200) and every record back unchanged.
    """
    first = broker_factory()
    n = 200
    p = Producer({"bootstrap.servers": first.bootstrap, "enable.idempotence": False, "acks": "all", "linger.ms": 5})
    for i in range(n):
        p.produce(unique_topic, key=b"k%d" % i, value=b"v%d" % i, headers=[("i", b"%d" % i)], timestamp=BASE_TS + i)
    assert p.flush(TIMEOUT) == 0
    del p
    first.stop(signal.SIGTERM)

    second = broker_factory(data_dir=first.data_dir)
    c = Consumer(
        {
            "bootstrap.servers": second.bootstrap,
            "group.id": "runnel-tests-unused-group",
            "enable.auto.commit": False,
            "auto.offset.reset": "error",
        }
    )
    try:
        tp = TopicPartition(unique_topic, 0)
        assert c.get_watermark_offsets(tp, timeout=TIMEOUT, cached=False) == (0, n)
        c.assign([TopicPartition(unique_topic, 0, 0)])
        got = []
        wait_until(lambda: got.extend(m for m in c.consume(n, 0.5) if not m.error()) or len(got) >= n, TIMEOUT)
        assert [m.offset() for m in got] == list(range(n))
        for i, m in enumerate(got):
            assert (m.key(), m.value(), m.headers(), m.timestamp()) == (
                b"k%d" % i,
                b"v%d" % i,
                [("i", b"%d" % i)],
                (TIMESTAMP_CREATE_TIME, BASE_TS + i),
            )
    finally:
        c.close()
