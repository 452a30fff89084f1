"""Reading what the worker wrote, starting from where the topic ended when the test began."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, TopicPartition

from schemas.base import CloudEvent
from schemas.codec import decode
from schemas.topics import CLOCK, OUTPUT_MAX_MESSAGE_BYTES
from services import kafka_io


class OutputWatcher:
    """Remembers the end of each topic at creation; `collect` reads only what came after."""

    def __init__(self, bootstrap: str, topics: Iterable[str]) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "o2c-tests", "enable.auto.commit": False}
        )
        self._consumer.assign(kafka_io.end_offsets(bootstrap, topics))
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


def _ledger_input_names() -> list[str]:
    from services.worker.processors import LEDGER_INPUTS
    from services.worker.settlement_processors import SETTLEMENT_INPUTS

    return [t.name for t in (*LEDGER_INPUTS, *SETTLEMENT_INPUTS)] + [CLOCK.name]


def end_offsets(bootstrap: str, topics: Iterable[str] | None = None) -> list[TopicPartition]:
    """The current end of every partition of `topics` (default: every worker input)."""
    names = list(topics) if topics is not None else _ledger_input_names()
    return kafka_io.end_offsets(bootstrap, names)


def commit_offsets(bootstrap: str, group_id: str, offsets: list[TopicPartition]) -> None:
    kafka_io.commit_offsets(bootstrap, group_id, offsets)


def lag_of(bootstrap: str, group_id: str) -> int:
    from services.kafka_io import lag

    return lag(bootstrap, group_id, _ledger_input_names())
