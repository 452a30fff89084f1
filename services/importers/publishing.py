"""Publishing an import once: ids already on the topic are not sent again."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from confluent_kafka import KafkaException, TopicPartition

from schemas.base import CloudEvent
from schemas.topics import Topic, topic_for
from services.kafka_io import EventProducer, consumer, watermarks


class TopicMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Outcome:
    published: int
    already: int


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (Utils.murmur2 in the Java client) as an unsigned 32-bit int."""
    m, h = 0x5BD1E995, (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def partition_for(key: str, partitions: int) -> int:
    """The partition the producer's `murmur2_random` partitioner (Java's default) picks."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def ids_on_topic(
    bootstrap: str, topic: Topic, keys: Iterable[str], timeout: float = 120.0
) -> set[str]:
    """Every event id on the partitions of `keys`, up to their end as of now: a bounded
    read that stops at the high watermarks taken before it starts, never an idle wait."""
    c = consumer(bootstrap, "o2c-importer")
    try:
        metadata = c.list_topics(topic.name, timeout=30).topics.get(topic.name)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise TopicMissing(f"topic {topic.name} does not exist; run `o2c topics create`")
        count = len(metadata.partitions)
        ends: dict[int, int] = {}
        starts = []
        for p in sorted({partition_for(k, count) for k in keys}):
            low, high = watermarks(c, TopicPartition(topic.name, p))
            if high > low:
                ends[p] = high
                starts.append(TopicPartition(topic.name, p, low))
        seen: set[str] = set()
        if not ends:
            return seen
        c.assign(starts)
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                raise KafkaException(f"reading {topic.name} took longer than {timeout}s")
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            # A value that is not JSON is not ours to judge here: the worker dead-letters it.
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                seen.add(str(orjson.loads(msg.value() or b"{}").get("id")))
            partition, offset = msg.partition(), msg.offset() or 0
            if partition in ends and offset + 1 >= ends[partition]:
                del ends[partition]
        return seen
    finally:
        c.close()


def publish_new(bootstrap: str, events: Sequence[CloudEvent]) -> Outcome:
    """Send the events whose id is not on their home topic yet; flush before returning."""
    if not events:
        return Outcome(0, 0)
    keys: dict[str, set[str]] = {}
    topics: dict[str, Topic] = {}
    for event in events:
        topic = topic_for(event)
        topics[topic.name] = topic
        keys.setdefault(topic.name, set()).add(event.partition_key() or "")
    present: set[str] = set()
    for name, topic in topics.items():
        present |= ids_on_topic(bootstrap, topic, keys[name])
    fresh = [e for e in events if e.id not in present]
    if fresh:
        producer = EventProducer(bootstrap)
        for event in fresh:
            producer.send(event)
        producer.flush()
    return Outcome(len(fresh), len(events) - len(fresh))
