"""Building output events with ids derived from their cause, so a replay repeats them exactly."""

from __future__ import annotations

import uuid
from typing import TypeVar

from schemas.base import CloudEvent, EventData
from schemas.events import type_name

OUTPUT_NAMESPACE = uuid.UUID("6f1c2d0e-6b7a-5c1e-9d7e-0c2f4a8b9e01")
SOURCE = "o2c-matcher"

E = TypeVar("E", bound=CloudEvent)


def derived_id(*parts: str) -> str:
    """A stable id for something caused by `parts` (the cause's id and a discriminator)."""
    return str(uuid.uuid5(OUTPUT_NAMESPACE, "\x1f".join(parts)))


def output(cls: type[E], data: EventData, cause: CloudEvent, discriminator: str = "") -> E:
    kind = type_name(cls)
    event = cls(
        specversion="1.0",
        id=derived_id(cause.id, kind, discriminator),
        source=SOURCE,
        type=kind,
        time=cause.time,
        causationid=cause.id,
        data=data,
    )
    return event.model_copy(update={"subject": event.partition_key()})
