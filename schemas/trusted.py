"""Decoding o2c-matcher's own outputs without validating them again.

Every output was built from the contract's models, and so validated, before it was
encoded; a reader of the output topics (the projections) need not check it twice.
`decode_trusted` parses the JSON and converts each field to the type its model declares
(Decimal, datetime, date, enum, nested model), then builds the model with
`model_construct`, which runs no validators: the same event as `schemas.codec.decode`
gives for the same bytes (tests/unit/test_trusted_decode.py), at a fraction of the cost.

Only for bytes o2c-matcher wrote: for anything else, use `decode`. A type outside
`TRUSTED_TYPES`, or bytes that do not parse, fall back to `decode`, so an error is still
reported as `InvalidEvent` with its field.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import MAX_EVENT_BYTES, decode, decode_document
from schemas.events import type_name
from schemas.evolution import UPCASTERS

# Outputs of o2c-matcher on the topics the read side reads (o2c.matches, o2c.mismatches,
# o2c.credit); `o2c exceptions assign` writes mismatch.assigned.
TRUSTED_TYPES: Mapping[str, type[CloudEvent]] = {
    type_name(t): t
    for t in (
        ev.BalanceChanged,
        ev.OrderMatched,
        ev.WriteoffApplied,
        ev.PaymentApplied,
        ev.PaymentSettled,
        ev.PayoutMatched,
        ev.MismatchDetected,
        ev.MismatchResolved,
        ev.MismatchAssigned,
        ev.CreditLimitBreached,
        ev.CreditLimitRestored,
    )
}

Convert = Callable[[Any], Any]


def decode_trusted(raw: bytes, max_bytes: int = MAX_EVENT_BYTES) -> CloudEvent:
    """The event o2c-matcher encoded in `raw`, built without validation."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return decode(raw, max_bytes)
    try:
        event_class = TRUSTED_TYPES[document["type"]]
    except (KeyError, TypeError):
        # Another type (the worker reads copies of inputs here too): validated in full,
        # from the document already parsed.
        return _validated(raw, document, max_bytes)
    if document.get("specversion") != "1.0" or document["type"] in UPCASTERS:
        return _validated(raw, document, max_bytes)  # the full path knows other versions
    try:
        built: CloudEvent = _builder(event_class)(document)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return decode(raw, max_bytes)  # not as o2c-matcher writes it: say what is wrong
    return built


def _validated(raw: bytes, document: Any, max_bytes: int) -> CloudEvent:
    """What decode(raw, max_bytes) gives, without parsing `raw` again."""
    if len(raw) > max_bytes:
        return decode(raw, max_bytes)  # refused for its size, as decode refuses it
    return decode_document(document)


@cache
def _builder(model: type[BaseModel]) -> Callable[[Mapping[str, Any]], Any]:
    """A function from a JSON object to `model`, converting each field as declared.

    It sets the instance's attributes as `model_construct` does, without that method's
    per-call look-ups of defaults (a third of the decode time): the defaults of these
    models are constants, checked here once.
    """
    if model.__pydantic_post_init__ or model.__pydantic_root_model__:
        raise TypeError(f"{model.__name__}: no trusted construction")
    fields = []
    for name, info in model.model_fields.items():
        if info.default_factory is not None:
            raise TypeError(f"{model.__name__}.{name}: no trusted construction")
        default = None if info.is_required() else info.get_default()
        fields.append(
            (name, info.alias or name, _converter(info.annotation), info.is_required(), default)
        )

    def build(document: Mapping[str, Any]) -> Any:
        values = {}
        given = set()
        for name, key, convert, required, default in fields:
            if key in document:
                values[name] = convert(document[key])
                given.add(name)
            elif required:
                raise KeyError(key)
            else:
                values[name] = default
        instance = model.__new__(model)
        _set(instance, "__dict__", values)
        _set(instance, "__pydantic_fields_set__", given)
        _set(instance, "__pydantic_extra__", None)
        _set(instance, "__pydantic_private__", None)
        return instance

    return build


_set = object.__setattr__


def _converter(annotation: Any) -> Convert:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _converter(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"no trusted conversion for {annotation}")
        inner = _converter(options[0])
        return lambda v: None if v is None else inner(v)
    if origin is tuple:
        inner = _converter(typing.get_args(annotation)[0])
        return lambda v: tuple(inner(x) for x in v)
    if origin is list:
        inner = _converter(typing.get_args(annotation)[0])
        return lambda v: [inner(x) for x in v]
    if origin is typing.Literal:
        return _same
    if annotation is AwareDatetime:
        return datetime.fromisoformat
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return _builder(annotation)
        if issubclass(annotation, enum.Enum):
            return annotation
        if issubclass(annotation, Decimal):
            return _decimal
        if issubclass(annotation, datetime):
            return datetime.fromisoformat
        if issubclass(annotation, date):
            return date.fromisoformat
        if annotation in (str, int, bool):
            return _same
    raise TypeError(f"no trusted conversion for {annotation}")


def _same(value: Any) -> Any:
    return value


def _decimal(value: Any) -> Decimal:
    # Amounts are strings on the wire; a JSON number takes the full path, which refuses it.
    if type(value) is not str:
        raise TypeError("amount is not a string")
    return Decimal(value)
