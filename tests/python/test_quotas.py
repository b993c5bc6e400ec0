"""Client quotas with confluent-kafka: a producer_byte_rate quota set through
the `runnel quota` command holds a confluent-kafka producer to the rate
within 10%, and the producer's throttle_cb sees the throttle time the broker
sends (KIP-219); a consumer_byte_rate quota does the same to a consumer.

The rate is the slope of a least-squares line through the acknowledged bytes
over time, after a 2 s warm-up that lets the first burst pass. The broker
runs with two one-second quota windows so the rate settles within a second,
and without an fsync per message, so the disk is not what limits the rate.
"""

from __future__ import annotations

import subprocess
import time

from confluent_kafka import Producer

from conftest import runnel_bin

RATE = 1_000_000
SETTINGS = {"quota.window.num": 2, "quota.window.size.seconds": 1, "log.flush.interval.messages": 1000000}


def _quota(bootstrap: str, *args: str) -> str:
    out = subprocess.run([runnel_bin(), "quota", "--brokers", bootstrap, *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    sxx = sum((p[0] - mx) ** 2 for p in points)
    return sxy / sxx


def _produce_flat_out(bootstrap: str, client_id: str, topic: str, warm_up: float, run: float):
    """Produces 10 KB records as fast as the client queue allows; returns the
    rate of acknowledged bytes after `warm_up` and the throttle events seen."""
    acked = [0]
    throttles = []

    def on_delivery(err, msg):
        if err is None:
            acked[0] += len(msg.value())

    p = Producer({
        "bootstrap.servers": bootstrap, "client.id": client_id, "enable.idempotence": False, "acks": 1,
        "linger.ms": 5, "batch.size": 65536, "queue.buffering.max.kbytes": 1024, "message.timeout.ms": 60000,
        "throttle_cb": lambda event: throttles.append(event.throttle_time),
    })
    payload = b"q" * 10_000
    started = time.monotonic()
    next_sample = started + warm_up
    points = []
    while time.monotonic() - started < run:
        try:
            p.produce(topic, value=payload, on_delivery=on_delivery)
        except BufferError:
            p.poll(0.005)
        p.poll(0)
        now = time.monotonic()
        if now >= next_sample:
            points.append((now - started, float(acked[0])))
            next_sample += 0.1
    p.purge(in_queue=True, in_flight=False)
    p.flush(30)
    return _slope(points), throttles


def test_producer_byte_rate_holds_a_confluent_kafka_producer_to_the_rate(broker_factory):
    b = broker_factory(settings=SETTINGS)
    assert "changed the quotas of client-id=py-slow" in _quota(
        b.bootstrap, "set", "--client-id", "py-slow", "--producer-byte-rate", str(RATE))

    rate, throttles = _produce_flat_out(b.bootstrap, "py-slow", "py-quota", warm_up=2.0, run=8.0)
    assert abs(rate - RATE) / RATE <= 0.10, f"measured {rate:.0f} B/s against a quota of {RATE} B/s"
    assert throttles and max(throttles) > 0, "throttle_cb saw no throttle time"

    # Another client id has no quota and is not throttled.
    rate, throttles = _produce_flat_out(b.bootstrap, "py-free", "py-quota", warm_up=1.0, run=3.0)
    assert rate > 2 * RATE, f"a client id without a quota ran at only {rate:.0f} B/s"
    assert not [t for t in throttles if t > 0]


def test_consumer_byte_rate_holds_a_confluent_kafka_consumer_to_the_rate(broker_factory):
    from confluent_kafka import Consumer, TopicPartition

    b = broker_factory(settings=SETTINGS)
    # Batches of at most 64 KB: a fetch returns at least one whole batch (KIP-74).
    loader = Producer({"bootstrap.servers": b.bootstrap, "client.id": "py-loader", "linger.ms": 5,
                       "batch.size": 65536, "enable.idempotence": False})
    payload = b"c" * 10_000
    for _ in range(1600):
        while True:
            try:
                loader.produce("py-quota-fetch", value=payload)
                break
            except BufferError:
                loader.poll(0.01)
    assert loader.flush(60) == 0
    _quota(b.bootstrap, "set", "--client-id", "py-slow-consumer", "--consumer-byte-rate", str(RATE))

    throttles = []
    # Small fetches: a fetch that would go over the quota is answered empty, and its throttle counts the
    # bytes it would have had (as in Kafka), so large fetches waste part of the quota.
    c = Consumer({"bootstrap.servers": b.bootstrap, "client.id": "py-slow-consumer", "group.id": "py-quota",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 100, "fetch.max.bytes": 65536,
                  "max.partition.fetch.bytes": 65536, "message.max.bytes": 65536,
                  "throttle_cb": lambda event: throttles.append(event.throttle_time)})
    c.assign([TopicPartition("py-quota-fetch", 0, 0)])
    received = 0
    started = time.monotonic()
    next_sample = started + 2.0
    points = []
    while time.monotonic() - started < 8.0:
        m = c.poll(0.05)
        if m is not None:
            assert m.error() is None, m.error()
            received += len(m.value())
        now = time.monotonic()
        if now >= next_sample:
            points.append((now - started, float(received)))
            next_sample += 0.1
    c.close()
    rate = _slope(points)
    assert abs(rate - RATE) / RATE <= 0.10, f"measured {rate:.0f} B/s against a quota of {RATE} B/s"
    assert throttles and max(throttles) > 0, "throttle_cb saw no throttle time"
