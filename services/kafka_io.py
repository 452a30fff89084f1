"""Thin helpers over confluent-kafka for the CLI and tests: admin, producing, consuming."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from schemas.base import CloudEvent
from schemas.codec import encode
from schemas.topics import OUTPUT_MAX_MESSAGE_BYTES, Topic, destinations
from services.connections import kafka_config


class DeliveryFailed(RuntimeError):
    def __init__(
        self, message: str, error: KafkaError | None = None, topic: str | None = None
    ) -> None:
        super().__init__(message)
        self.error = error  # the first failed delivery's error, and its topic
        self.topic = topic


def admin(bootstrap: str) -> AdminClient:
    return AdminClient(kafka_config(bootstrap))


@dataclass(frozen=True)
class TopicOutcome:
    topic: Topic
    state: str  # "created", "updated" (settings brought in line) or "exists"
    partitions: int  # as found on the broker


def ensure_topics(
    bootstrap: str, topics: Iterable[Topic], timeout: float = 30.0
) -> list[TopicOutcome]:
    """Create missing topics and bring the settings of existing ones in line. Idempotent.

    Partition counts of existing topics are reported, never changed: adding partitions
    would move keys to other partitions and break co-partitioning.
    """
    client = admin(bootstrap)
    metadata = client.list_topics(timeout=timeout).topics
    wanted = list(topics)
    missing = [t for t in wanted if t.name not in metadata]
    if missing:
        new = [NewTopic(t.name, t.partitions, 1, config=t.config()) for t in missing]
        for future in client.create_topics(new, request_timeout=timeout).values():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        _wait_for_leaders(client, [t.name for t in missing], timeout)
    existing = [t for t in wanted if t.name in metadata]
    updated = _align_configs(client, existing, timeout)
    states = {t.name: "created" for t in missing} | dict.fromkeys(updated, "updated")
    return [
        TopicOutcome(
            t,
            states.get(t.name, "exists"),
            len(metadata[t.name].partitions) if t.name in metadata else t.partitions,
        )
        for t in wanted
    ]


def _wait_for_leaders(client: AdminClient, names: list[str], timeout: float) -> None:
    """A new topic's partitions answer only once they have a leader: wait for that, so that
    whoever reads or writes right after creating the topics is not refused."""
    deadline = time.monotonic() + timeout
    while True:
        topics = client.list_topics(timeout=timeout).topics
        waiting = [
            name
            for name in names
            if name not in topics
            or topics[name].error is not None
            or any(p.leader < 0 or p.error is not None for p in topics[name].partitions.values())
        ]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise KafkaException(f"topics without a leader after {timeout}s: {waiting}")
        time.sleep(0.2)


def _align_configs(client: AdminClient, topics: list[Topic], timeout: float) -> list[str]:
    if not topics:
        return []
    resources = [ConfigResource(ResourceType.TOPIC, t.name) for t in topics]
    described = client.describe_configs(resources, request_timeout=timeout)
    changes = []
    for topic, future in zip(topics, described.values(), strict=True):
        current = {name: entry.value for name, entry in future.result().items()}
        differing = {k: v for k, v in topic.config().items() if current.get(k) != v}
        if differing:
            entries = [
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                for k, v in differing.items()
            ]
            changes.append(
                ConfigResource(ResourceType.TOPIC, topic.name, incremental_configs=entries)
            )
    if changes:
        for future in client.incremental_alter_configs(changes).values():
            future.result()
    return [c.name for c in changes]


def producer(bootstrap: str, **extra: Any) -> Producer:
    config: dict[str, Any] = kafka_config(bootstrap) | {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": OUTPUT_MAX_MESSAGE_BYTES,
        # The Java client's partitioner, which faust (aiokafka) uses too: an order's facts
        # and the outputs about it must land on the same partition number.
        "partitioner": "murmur2_random",
    }
    config.update(extra)
    return Producer(config)


class EventProducer:
    """Produces events to their home topic with the contract's key; `flush` raises on loss."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = producer(bootstrap)
        self._errors: list[tuple[KafkaError, str | None]] = []
        self.delivered = 0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append((err, msg.topic()))
        else:
            self.delivered += 1

    def send(self, event: CloudEvent, topic: Topic | None = None) -> None:
        """To `topic`, else to the event's home topic and its internal copies."""
        value = encode(event)
        if topic is not None:
            self.send_raw(topic.name, event.partition_key(), value, event.type)
            return
        for target, key in destinations(event):
            self.send_raw(target.name, key, value, event.type)

    def send_raw(
        self, topic: str, key: str | bytes | None, value: bytes, kind: str | None = None
    ) -> None:
        """`kind`, the event's type, goes in the CloudEvents Kafka binding's `ce_type`
        header, so that a reader can route the record without parsing it."""
        headers: list[tuple[str, str | bytes | None]] | None = (
            None if kind is None else [("ce_type", kind.encode())]
        )
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=self._on_delivery
                )
                break
            except BufferError:
                self._producer.poll(0.5)  # local queue full: let deliveries drain
        self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> int:
        remaining = self._producer.flush(timeout)
        if remaining:
            raise DeliveryFailed(f"{remaining} messages not delivered within {timeout}s")
        if self._errors:
            first, topic = self._errors[0]
            raise DeliveryFailed(f"{len(self._errors)} deliveries failed: {first}", first, topic)
        return self.delivered


def consumer(bootstrap: str, group_id: str, from_beginning: bool = True, **extra: Any) -> Consumer:
    config: dict[str, Any] = kafka_config(bootstrap) | {
        "group.id": group_id,
        "auto.offset.reset": "earliest" if from_beginning else "latest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        # Outputs of an exactly_once worker are visible once their transaction committed;
        # for records produced without transactions this changes nothing.
        "isolation.level": "read_committed",
    }
    config.update(extra)
    return Consumer(config)


def read_until_idle(
    bootstrap: str,
    topics: Iterable[str],
    idle_seconds: float,
    from_beginning: bool = True,
    max_seconds: float | None = None,
) -> Iterator[Message]:
    """Yield messages of every partition until none has arrived for `idle_seconds`.

    Partitions are assigned directly rather than through a consumer group, so reading
    starts at once and leaves no committed offsets behind.
    """
    c = consumer(bootstrap, "o2c-reader", from_beginning)
    start = OFFSET_BEGINNING if from_beginning else OFFSET_END
    metadata = c.list_topics(timeout=30)
    partitions = [
        TopicPartition(name, p, start)
        for name in topics
        if name in metadata.topics
        for p in metadata.topics[name].partitions
    ]
    c.assign(partitions)
    started = last = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if now - last >= idle_seconds or (max_seconds and now - started >= max_seconds):
                return
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            last = time.monotonic()
            yield msg
    finally:
        c.close()


def lag(bootstrap: str, group_id: str, topics: Iterable[str]) -> int:
    """Messages in `topics` that consumer group `group_id` has not committed yet."""
    c = consumer(bootstrap, group_id)
    try:
        metadata = c.list_topics(timeout=30)
        partitions = [
            TopicPartition(name, p)
            for name in topics
            if name in metadata.topics
            for p in metadata.topics[name].partitions
        ]
        behind = 0
        for tp in c.committed(partitions, timeout=30):
            low, high = watermarks(c, tp)
            position = tp.offset if tp.offset >= 0 else low
            behind += max(0, high - position)
        return behind
    finally:
        c.close()


def end_offsets(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    """The current end of every partition of `topics`."""
    c = consumer(bootstrap, "o2c-reader")
    try:
        metadata = c.list_topics(timeout=30)
        ends = []
        for name in topics:
            for p in metadata.topics[name].partitions:
                _low, high = watermarks(c, TopicPartition(name, p))
                ends.append(TopicPartition(name, p, high))
        return ends
    finally:
        c.close()


_MOVING_LEADER = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
    }
)


def watermarks(c: Consumer, tp: TopicPartition, timeout: float = 30.0) -> tuple[int, int]:
    """Low and high watermark of a partition, asking again while its leader is moving in
    (a new topic's metadata can name a leader a moment before that leader serves it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = c.get_watermark_offsets(tp, timeout=10)
            return int(low), int(high)
        except KafkaException as exc:
            # librdkafka does not mark NOT_LEADER_FOR_PARTITION retriable here; it passes
            # once its metadata catches up, so anything is asked again until the deadline.
            if exc.args[0].code() not in _MOVING_LEADER or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def commit_offsets(bootstrap: str, group_id: str, offsets: list[TopicPartition]) -> None:
    """Make consumer group `group_id` start at `offsets`, as if it had read all before them."""
    c = consumer(bootstrap, group_id)
    try:
        c.commit(offsets=offsets, asynchronous=False)
    finally:
        c.close()
