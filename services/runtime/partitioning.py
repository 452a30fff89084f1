"""Where a key belongs: murmur2 of its bytes, as the Java client and the contract place it.

Written here rather than taken from a library: the only Python implementations came with
Kafka clients we no longer use (aiokafka, kafka-python), and it is twenty lines pinned by
the Java client's own test vectors (tests/unit/test_partitioning.py).
"""

from __future__ import annotations

from functools import lru_cache

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2`, as an unsigned 32-bit integer."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    end = length & ~3
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


@lru_cache(maxsize=65_536)
def partition_of(key: bytes, partitions: int) -> int:
    """The partition the contract puts `key` on (murmur2, as the Java client does).

    Cached: the facts of one order, and the outputs about it, ask for the same key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
