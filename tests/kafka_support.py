"""Reading what the worker wrote, starting from where the topic ended when the test began."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, TopicPartition

from schemas.base import CloudEvent
from schemas.codec import decode
from schemas.topics import OUTPUT_MAX_MESSAGE_BYTES


class OutputWatcher:
    """Remembers the end of each topic at creation; `collect` reads only what came after."""

    def __init__(self, bootstrap: str, topics: Iterable[str]) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "o2c-tests", "enable.auto.commit": False}
        )
        metadata = self._consumer.list_topics(timeout=30)
        start = []
        for name in topics:
            for p in metadata.topics[name].partitions:
                _low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(name, p), timeout=10
                )
                start.append(TopicPartition(name, p, high))
        self._consumer.assign(start)
        self.seen: list[tuple[str, CloudEvent]] = []

    def collect(
        self, done: Callable[[list[tuple[str, CloudEvent]]], bool], timeout: float = 60.0
    ) -> list[tuple[str, CloudEvent]]:
        """Read until `done(seen)` holds; fail the test after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done(self.seen):
            if time.monotonic() > deadline:
                kinds = [e.type for _, e in self.seen]
                raise AssertionError(f"timed out after {timeout}s; saw {len(kinds)}: {kinds[:50]}")
            msg = self._consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            self.seen.append(
                (str(msg.topic()), decode(msg.value() or b"", max_bytes=OUTPUT_MAX_MESSAGE_BYTES))
            )
        return self.seen

    def close(self) -> None:
        self._consumer.close()
