"""Building output events with ids derived from their cause, so a replay repeats them exactly.

Outputs are built from facts that were validated at the edge, by code the tests check
against the contract (every output of the rules is re-validated there), so they are
constructed without running the validators again: that was a third of the ledger's time.
`model_construct` itself then cost a fifth of what was left (it looks for aliases and
defaults field by field, each time), so `trusted` builds the instance as it would, from a
plan made once per class: the fields in declaration order (the serializer writes them in
the order of the instance's dict), each default filled in where no value is given.
tests/unit/test_output_contract.py checks that every output is a valid contract event.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from schemas.base import CloudEvent, EventData
from schemas.events import type_name

OUTPUT_NAMESPACE = uuid.UUID("6f1c2d0e-6b7a-5c1e-9d7e-0c2f4a8b9e01")
SOURCE = "o2c-matcher"

E = TypeVar("E", bound=CloudEvent)
D = TypeVar("D", bound=EventData)
M = TypeVar("M", bound=BaseModel)

_object_setattr = object.__setattr__
_MISSING = object()

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


Plan = tuple[tuple[str, ...], tuple[tuple[str, Callable[[], Any] | None, Any], ...]]


@cache
def _plan(cls: type[BaseModel]) -> Plan:
    """The field names in declaration order; and per field its name, its default factory
    and its default (_MISSING for a required field)."""
    plan = []
    for name, info in cls.model_fields.items():
        factory = cast(Callable[[], Any] | None, info.default_factory)
        default = _MISSING if info.is_required() else info.default
        plan.append((name, factory, default))
    return tuple(cls.model_fields), tuple(plan)


def construct(cls: type[M], fields: dict[str, Any]) -> M:
    """What `cls.model_construct(**fields)` returns, without its per-call bookkeeping.
    Every key of `fields` must be a field of `cls` (model_construct would drop the others).
    `fields` becomes the instance's dict when it names every field in declaration order, as
    the rules' outputs do: the caller must not change it afterwards."""
    names, plan = _plan(cls)
    if len(fields) == len(names) and tuple(fields) == names:
        values = fields
    else:
        values = {}
        for name, factory, default in plan:
            if name in fields:
                values[name] = fields[name]
            elif factory is not None:
                values[name] = factory()
            elif default is not _MISSING:
                values[name] = default
    instance = cls.__new__(cls)
    _object_setattr(instance, "__dict__", values)
    _object_setattr(instance, "__pydantic_fields_set__", set(fields))
    _object_setattr(instance, "__pydantic_extra__", None)
    _object_setattr(instance, "__pydantic_private__", None)
    return instance


def trusted(cls: type[D], **fields: Any) -> D:
    """Output data, trusted: see the module docstring. Unset optional fields get defaults."""
    return construct(cls, fields)


def output(cls: type[E], data: EventData, cause: CloudEvent, discriminator: str = "") -> E:
    kind = _type_of(cls)
    subject = None
    for name in cls.key_fields:  # the first key field that is set (a loop: no generator)
        value = getattr(data, name, None)
        if value:
            subject = str(value)
            break
    fields = {
        "specversion": "1.0",
        "id": derived_id(cause.id, kind, discriminator),
        "source": SOURCE,
        "type": kind,
        "time": cause.time,
        "subject": subject,
        "datacontenttype": "application/json",
        "causationid": cause.id,
        "data": data,
    }
    return construct(cls, fields)
