"""Validation at the edge: a Kafka message becomes an event or a dead letter, never a crash."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import InvalidEvent, decode
from schemas.events import type_name
from schemas.topics import TOPICS_BY_NAME
from services.domain.outputs import derived_id


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: datetime
    headers: tuple[tuple[str, bytes], ...] = ()


def header(message: RawMessage, name: str) -> str | None:
    for key, value in message.headers:
        if key == name:
            return None if value is None else value.decode("utf-8", "replace")
    return None


def accept(message: RawMessage) -> CloudEvent:
    """The event a message carries; InvalidEvent when it breaks the contract."""
    event = decode(message.value or b"")
    topic = TOPICS_BY_NAME.get(message.topic)
    if topic is not None and event.type not in topic.type_names:
        raise InvalidEvent.single(
            "type", f"{event.type} does not belong on {message.topic}", event.id
        )
    expected_key = event.partition_key()
    if expected_key is not None and topic is not None and not topic.rekeyed:
        actual_key = (message.key or b"").decode("utf-8", "replace")
        if actual_key != expected_key:
            raise InvalidEvent.single(
                "key",
                f"message key {actual_key!r} disagrees with the event's key field "
                f"({topic.key}) {expected_key!r}",
                event.id,
            )
    return event


def rejection(message: RawMessage, error: InvalidEvent, source: str) -> ev.EventRejected:
    position = f"{message.topic}/{message.partition}/{message.offset}"
    kind = type_name(ev.EventRejected)
    return ev.EventRejected(
        specversion="1.0",
        id=derived_id(position, kind),
        source=source,
        type=kind,
        time=message.timestamp,
        causationid=error.event_id,
        data=ev.EventRejectedData(
            original_topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            original_key=None if message.key is None else message.key.decode("utf-8", "replace"),
            original_value=base64.b64encode(message.value or b"").decode("ascii"),
            error=str(error),
            rejected_at=message.timestamp,
        ),
    )


def raw_message(message: Any) -> RawMessage:
    headers = message.headers or ()
    if isinstance(headers, dict):
        headers = headers.items()
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp=datetime.fromtimestamp(message.timestamp, tz=UTC),
        headers=tuple((str(k), bytes(v or b"")) for k, v in headers),
    )
