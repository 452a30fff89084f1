"""Publishing an import once: ids already on the topic are not sent again."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from confluent_kafka import KafkaException, TopicPartition

from schemas.base import CloudEvent
from schemas.topics import Topic, topic_for
from services.kafka_io import EventProducer, consumer, watermarks


@dataclass(frozen=True)
class Outcome:
    published: int
    already: int


def ids_on_topic(bootstrap: str, topic: Topic, timeout: float = 60.0) -> set[str]:
    """Every event id on `topic` up to its end as of now: a bounded read, not a tail.

    The whole topic is read rather than the partitions of the file's keys: finding a key's
    partition would repeat the producer's murmur2 partitioner here, and a statement's
    import is rare enough that reading the topic once is the simpler correct answer.
    """
    c = consumer(bootstrap, "o2c-importer")
    try:
        metadata = c.list_topics(topic.name, timeout=30).topics.get(topic.name)
        if metadata is None or metadata.error is not None:
            return set()
        ends: dict[int, int] = {}
        starts = []
        for p in metadata.partitions:
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
            with contextlib.suppress(orjson.JSONDecodeError):
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
    topics = {topic_for(e).name: topic_for(e) for e in events}
    present: set[str] = set()
    for topic in topics.values():
        present |= ids_on_topic(bootstrap, topic)
    fresh = [e for e in events if e.id not in present]
    if fresh:
        producer = EventProducer(bootstrap)
        for event in fresh:
            producer.send(event)
        producer.flush()
    return Outcome(len(fresh), len(events) - len(fresh))
