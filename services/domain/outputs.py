"""Building output events with ids derived from their cause, so a replay repeats them exactly.

Outputs are built from facts that were validated at the edge, by code the tests check
against the contract (every output of the rules is re-validated there), so they are
constructed without running the validators again: that was a third of the ledger's time.
"""

from __future__ import annotations

import hashlib
import uuid
from functools import cache
from typing import Any, TypeVar, cast

from schemas.base import CloudEvent, EventData
from schemas.events import type_name

OUTPUT_NAMESPACE = uuid.UUID("6f1c2d0e-6b7a-5c1e-9d7e-0c2f4a8b9e01")
SOURCE = "o2c-matcher"

E = TypeVar("E", bound=CloudEvent)
D = TypeVar("D", bound=EventData)

_NAMESPACE_BYTES = OUTPUT_NAMESPACE.bytes


def derived_id(*parts: str) -> str:
    """A stable id for something caused by `parts` (the cause's id and a discriminator).

    uuid.uuid5(OUTPUT_NAMESPACE, "\\x1f".join(parts)), computed without building UUID
    objects (RFC 4122: SHA-1 of namespace and name, version 5, variant 10).
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + "\x1f".join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@cache
def _type_of(cls: type[CloudEvent]) -> str:
    return type_name(cls)


def trusted(cls: type[D], **fields: Any) -> D:
    """Output data, trusted: see the module docstring. Unset optional fields get defaults."""
    return cast(D, cls.model_construct(**fields))


def output(cls: type[E], data: EventData, cause: CloudEvent, discriminator: str = "") -> E:
    kind = _type_of(cls)
    subject = next((str(v) for f in cls.key_fields if (v := getattr(data, f, None))), None)
    event = cls.model_construct(
        specversion="1.0",
        id=derived_id(cause.id, kind, discriminator),
        source=SOURCE,
        type=kind,
        time=cause.time,
        subject=subject,
        datacontenttype="application/json",
        causationid=cause.id,
        data=data,
    )
    return cast(E, event)
