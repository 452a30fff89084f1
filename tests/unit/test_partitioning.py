"""The runtime places keys as the Java client does (murmur2), pinned by Kafka's own vectors."""

from __future__ import annotations

import pytest

from services.runtime.partitioning import murmur2, partition_of


@pytest.mark.parametrize(
    ("key", "signed"),
    [
        # Kafka's UtilsTest.testMurmur2, as signed 32-bit Java ints.
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_the_java_clients_values(key: bytes, signed: int) -> None:
    assert murmur2(key) == signed & 0xFFFFFFFF


@pytest.mark.parametrize(
    ("key", "partition"),
    [(b"ORD-1001", 1), (b"", 9), ("客户-7".encode(), 7), (b"foobar", 6)],
)
def test_partition_of_a_key_is_its_murmur2_modulo_the_partition_count(
    key: bytes, partition: int
) -> None:
    assert partition_of(key, 12) == partition
