"""Validation at the edge: a Kafka message becomes an event or a dead letter, never a crash."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import InvalidEvent, decode
from schemas.events import type_name
from schemas.topics import TOPICS_BY_NAME, Role
from schemas.trusted import decode_trusted
from services.card_masking import (
    CARD_NUMBERS_MASKED,
    CardMasking,
    mask_reason,
    masked_fields_text,
)
from services.domain.outputs import derived_id

log = logging.getLogger(__name__)


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
    """The event a message carries; InvalidEvent when it breaks the contract.

    Records on o2c-matcher's own topics (outputs and internal copies, which only its
    processes may write: services/kafka_acls.py) are o2c-matcher's outputs, validated when
    they were built, or copies of records admitted here before: those of the types
    `decode_trusted` knows are built without validating them again, as the projections
    read them (tests/unit/test_trusted_decode.py keeps both decodes equal)."""
    topic = TOPICS_BY_NAME.get(message.topic)
    if topic is not None and topic.role is not Role.INPUT:
        event = decode_trusted(message.value or b"")
    else:
        event = decode(message.value or b"")
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


def rejection(
    message: RawMessage, error: InvalidEvent, source: str, masking: CardMasking | None = None
) -> ev.EventRejected:
    """The dead letter of `message`: card numbers are masked in its bytes and its reason
    (`CardMasking.rejected_value`); everything else is kept as sent, for a replay."""
    position = f"{message.topic}/{message.partition}/{message.offset}"
    value, count = (masking or card_masking()).rejected_value(message.value or b"")
    if count:
        CARD_NUMBERS_MASKED.labels(message.topic).inc(count)
        log.warning(
            "card numbers masked in the dead letter of %s (%d); the producer of %s should "
            "not send card numbers, and the topic still holds them",
            position,
            count,
            message.topic,
        )
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
            original_value=base64.b64encode(value).decode("ascii"),
            error=mask_reason(str(error)),
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


# --- card numbers: a step of its own after `accept` (issue 21) ------------------------


@lru_cache(maxsize=1)
def card_masking() -> CardMasking:
    """The process's masking, with the reference patterns matching reads ids with."""
    from services.settings import get_settings

    return CardMasking.from_settings(get_settings())


def admit(
    message: RawMessage, masking: CardMasking | None = None, *, warn: bool = True
) -> tuple[RawMessage, CloudEvent]:
    """`accept`, then card numbers masked in the event's free-text fields and in the
    message's bytes, which processors copy onward: what every reader of inputs (the worker,
    the projections) takes in. InvalidEvent as `accept`."""
    event = accept(message)
    return masked_cards(message, event, masking or card_masking(), warn=warn)


def masked_cards(
    message: RawMessage, event: CloudEvent, masking: CardMasking, *, warn: bool = True
) -> tuple[RawMessage, CloudEvent]:
    masked, fields = masking.event(event)
    if not fields:
        return message, event
    CARD_NUMBERS_MASKED.labels(message.topic).inc(sum(f.count for f in fields))
    # Once per event, never the number: the input topic's owner must stop sending them,
    # and the input topic keeps what they sent.
    log.log(
        logging.WARNING if warn else logging.DEBUG,
        "card numbers masked in %s/%d@%d (event %s), field %s; the producer of %s should "
        "not send card numbers, and the topic still holds them",
        message.topic,
        message.partition,
        message.offset,
        event.id,
        masked_fields_text(fields),
        message.topic,
    )
    value = masking.value(message.value or b"", masked)
    return replace(message, value=value), masked


def masked_value(message: RawMessage) -> bytes:
    """The bytes to copy a record onward with before its task decodes it (a re-routed
    record): the same masking, counted and told once, here; none again after the hop."""
    try:
        return admit(message)[0].value or b""
    except InvalidEvent:
        return card_masking().rejected_value(message.value or b"")[0]
