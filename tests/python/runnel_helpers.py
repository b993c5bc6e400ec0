"""Test data and small utilities shared by Runnel's client tests."""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

# A fixed, realistic CreateTime base (2023-11-14T22:13:20.123Z); odd
# milliseconds catch any rounding to seconds.
BASE_TS = 1_700_000_000_123

# Kafka's default message.max.bytes is 1048588 (1 MiB + 12 bytes of log
# overhead): the whole record batch must fit. A value of 1 MiB - 1 KiB leaves
# room for the 61-byte batch header, the record framing and a short key.
LARGE_VALUE_SIZE = 1024 * 1024 - 1024
BROKER_MESSAGE_MAX_BYTES = 1048588
# Client-side limits raised for the large-record tests.
CLIENT_MAX_BYTES = 2 * 1024 * 1024

CODECS = ["gzip", "snappy", "lz4", "zstd"]
# Record batch attribute bits 0-2.
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@dataclass
class Rec:
    """One record as produced, and as it must come back."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: int | None = None


def round_trip_records(base_ts: int = BASE_TS) -> list[Rec]:
    """Records covering keys, null/empty keys and values, headers and timestamps.

    Timestamps are explicit CreateTimes and deliberately not monotonic (the
    last record is older than the others): the broker must keep each exactly.
    """
    return [
        Rec(b"key-1", b"value-1", [], base_ts),
        Rec(None, b"record with a null key", [], base_ts + 1),
        Rec(b"tombstone-key", None, [], base_ts + 2),
        Rec(b"empty-value-key", b"", [], base_ts + 3),
        Rec(
            b"with-headers",
            b"value with headers",
            [
                ("h-binary", b"\x00\x01\x02\xfe\xff"),
                ("dup", b"first"),
                ("h-all-bytes", bytes(range(256))),
                ("dup", b"second"),
                ("h-empty", b""),
                ("dup", b"third"),
            ],
            base_ts + 4,
        ),
        Rec(b"\x00\xffbinary\nkey", bytes(range(256)) * 4, [("only", b"one")], base_ts + 5),
        Rec(b"older", b"timestamp earlier than the previous records", [], base_ts - 86_400_000),
    ]


def compressible_value(i: int) -> bytes:
    """A value that compresses well (so every codec really shrinks the batch)."""
    return (f"record {i:05d} of a compressible payload; " * 12).encode()


def large_value(seed: int = 7) -> bytes:
    """LARGE_VALUE_SIZE bytes of incompressible data, reproducible from seed."""
    import random

    return random.Random(seed).randbytes(LARGE_VALUE_SIZE)


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    """Poll predicate() until it returns a truthy value; return that value or raise."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def offsets_for_times_cases(base_ts: int, step: int) -> list[tuple[str, int, int | None]]:
    """(description, query timestamp, expected offset or None) for records at
    offsets 0..4 with timestamps base_ts + step*i."""
    last = base_ts + 4 * step
    return [
        ("before all records", base_ts - 10 * step, 0),
        ("exactly the first", base_ts, 0),
        ("just after the first", base_ts + 1, 1),
        ("between 2 and 3", base_ts + 2 * step + step // 2, 3),
        ("exactly the last", last, 4),
        ("after the last", last + 1, None),
    ]


def stored_batches(data_dir, topic: str, partition: int = 0) -> list[tuple[int, int, int]]:
    """(base offset, record count, codec id) of every record batch stored for
    topic-partition, read from its segment files in Kafka's on-disk layout
    (<data dir>/<topic>-<partition>/<base offset>.log, batches back to back)."""
    out = []
    for segment in sorted((Path(data_dir) / f"{topic}-{partition}").glob("*.log")):
        data = segment.read_bytes()
        pos = 0
        while pos + 61 <= len(data):
            base_offset, length = struct.unpack_from(">qi", data, pos)
            if length <= 0:
                break
            magic = data[pos + 16]
            assert magic == 2, f"{segment}: batch at byte {pos} has magic {magic}"
            (attributes,) = struct.unpack_from(">h", data, pos + 21)
            (count,) = struct.unpack_from(">i", data, pos + 57)
            out.append((base_offset, count, attributes & 0x7))
            pos += 12 + length
    return out


def assert_stored_with_codec(
    data_dir, topic: str, codec: str, records: int, partition: int = 0, singletons_may_be_plain: bool = False
):
    """The partition holds `records` records, all in batches compressed with `codec`.

    librdkafka sends a batch uncompressed when compressing would not make it
    smaller, which happens to a lone short record (e.g. the first line kcat
    sends before the rest are batched); `singletons_may_be_plain` allows
    one-record uncompressed batches, and still requires every other batch to
    use `codec`.
    """
    batches = stored_batches(data_dir, topic, partition)
    assert batches, f"no batches found on disk for {topic}-{partition}"
    checked = [b for b in batches if not (singletons_may_be_plain and b[1] == 1 and b[2] == CODEC_IDS["none"])]
    assert checked and {c for _, _, c in checked} == {CODEC_IDS[codec]}, f"stored batch codecs: {batches}"
    assert sum(n for _, n, _ in batches) == records, f"stored batches: {batches}"
