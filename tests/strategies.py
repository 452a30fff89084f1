"""Hypothesis strategies for valid instances of every event type of the contract.

`events(cls)` builds an event class field by field from its pydantic model: each field's
type hint (`Identifier`, `Amount`, `CurrencyCode`, `tuple[OrderLine, ...]`, ...) picks a
strategy. A data model with a `currency` draws it first, so that its `money_fields` carry
no more decimals than that currency allows. A type hint without a strategy here raises
TypeError, so a new kind of field in schemas/ cannot go ungenerated.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from datetime import UTC, date, timedelta, timezone
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import annotated_types
from hypothesis import strategies as st
from pydantic import BaseModel

from schemas.base import CloudEvent, EventData, Identifier, Text, Timestamp
from schemas.events import (
    ALL_EVENTS,
    Channel,
    Confidence,
    CustomerUpsertedData,
    PaymentMethod,
    TermsDays,
)
from schemas.money import CURRENCY_DECIMALS, Amount, CurrencyCode, SignedAmount

# The decimal-string regex of schemas/money.py: at most 18 integer digits and 6 decimals.
MAX_INTEGER_DIGITS = 18
MAX_DECIMALS = 6

# Kafka partitions and offsets are 64-bit at most; orjson cannot encode a larger int.
MAX_INT64 = 2**63 - 1

currencies = st.sampled_from(sorted(CURRENCY_DECIMALS))


def decimals(max_decimals: int, *, signed: bool) -> st.SearchStrategy[Decimal]:
    """Amounts with 0..max_decimals decimals (trailing zeros kept) and ≤ 18 integer digits."""

    @st.composite
    def build(draw: st.DrawFn) -> Decimal:
        places = draw(st.integers(0, max_decimals))
        unscaled = draw(st.integers(0, 10 ** (MAX_INTEGER_DIGITS + places) - 1))
        value = Decimal(unscaled).scaleb(-places)
        return -value if signed and draw(st.booleans()) else value

    return build()


@st.composite
def confidences(draw: st.DrawFn) -> Decimal:
    places = draw(st.integers(0, MAX_DECIMALS))
    return Decimal(draw(st.integers(0, 10**places))).scaleb(-places)


# Offsets a JSON timestamp can carry: RFC 3339 has whole minutes, within ±23:59.
offsets = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-(24 * 60 - 1), 24 * 60 - 1)
)
aware_datetimes = st.datetimes(timezones=st.just(UTC) | offsets)
identifiers = st.text(min_size=1, max_size=200)
texts = st.text(max_size=4000)
any_texts = st.text()

# Type hints of the schemas, compared with ==. Amounts are handled apart: their decimals
# depend on the currency.
_SIMPLE: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (Identifier, identifiers),
    (Text, texts),
    (Channel, st.text(min_size=1, max_size=40)),
    (PaymentMethod, st.text(min_size=1, max_size=40)),
    (TermsDays, st.integers(0, 3650)),
    (CurrencyCode, currencies),
    (Confidence, confidences()),
    (Timestamp, aware_datetimes),
    (date, st.dates()),
    (str, any_texts),
]


def _credit_limit_needs_currency(values: dict[str, Any]) -> None:
    if values["currency"] is None:
        values["credit_limit"] = None


# Model validators that tie fields together, and how to repair a draw to satisfy them.
_FIXUPS: dict[type[BaseModel], Callable[[dict[str, Any]], None]] = {
    CustomerUpsertedData: _credit_limit_needs_currency,
}

# Max decimals by field name, for the fields of a model whose amounts must fit a currency.
Places = dict[str, int]


def strategy_for(
    hint: Any, places: int | None = None, nested: Places | None = None
) -> st.SearchStrategy[Any]:
    """A strategy for one type hint.

    `places` bounds the decimals of an amount (default: what the decimal-string regex
    allows); `nested` is passed on to the models inside the hint, such as list items.
    """
    if hint == Amount:
        return decimals(MAX_DECIMALS if places is None else places, signed=False)
    if hint == SignedAmount:
        return decimals(MAX_DECIMALS if places is None else places, signed=True)
    for known, strategy in _SIMPLE:
        if hint == known:
            return strategy
    origin, args = get_origin(hint), get_args(hint)
    if origin in (types.UnionType, typing.Union) and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return st.none() | strategy_for(inner, places, nested)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(strategy_for(args[0], places, nested), max_size=3).map(tuple)
    if origin is Literal:
        return st.sampled_from(args)
    if origin is Annotated:
        return _bounded(args[0], args[1:])
    if isinstance(hint, type) and issubclass(hint, Enum):
        return st.sampled_from(hint)
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return models(hint, nested or {})
    raise TypeError(f"no strategy for the type hint {hint!r}")


def _bounded(base: Any, metadata: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """int or Decimal with the bounds of `Field(ge=..)` / `Field(gt=..)` in `Annotated`."""
    bounds = [m for info in metadata for m in getattr(info, "metadata", [info])]
    if (
        base is int
        and bounds
        and all(isinstance(b, annotated_types.Ge | annotated_types.Le) for b in bounds)
    ):
        ge = next((b.ge for b in bounds if isinstance(b, annotated_types.Ge)), 0)
        le = next((b.le for b in bounds if isinstance(b, annotated_types.Le)), MAX_INT64)
        assert isinstance(ge, int)
        assert isinstance(le, int)
        return st.integers(ge, le)
    if len(bounds) == 1 and isinstance(bounds[0], annotated_types.Gt):
        gt = bounds[0].gt
        if base is Decimal and isinstance(gt, int | Decimal):
            finite = st.decimals(min_value=gt, allow_nan=False, allow_infinity=False)
            return finite.filter(lambda d: d > gt)
    raise TypeError(f"no strategy for Annotated[{base!r}, {metadata!r}]")


@cache
def _hints(model: type[BaseModel]) -> dict[str, Any]:
    hints = get_type_hints(model, include_extras=True)
    return {name: hints[name] for name in model.model_fields}


def models(model: type[BaseModel], places: Places | None = None) -> st.SearchStrategy[Any]:
    """Valid instances of `model`. `places` bounds the decimals of some of its amounts."""
    hints = _hints(model)

    @st.composite
    def build(draw: st.DrawFn) -> BaseModel:
        values: dict[str, Any] = {}
        if "currency" in hints:
            values["currency"] = draw(strategy_for(hints["currency"]))
        own, nested = dict(places or {}), dict[str, Places]()
        currency = values.get("currency")
        if currency is not None and issubclass(model, EventData):
            # What EventData._amounts_fit_their_currency checks.
            allowed = CURRENCY_DECIMALS[currency]
            for name in model.money_fields:
                if "[]." in name:
                    list_name, field = name.split("[].", 1)
                    nested.setdefault(list_name, {})[field] = allowed
                else:
                    own[name] = allowed
        for name, hint in hints.items():
            if name not in values:
                values[name] = draw(strategy_for(hint, own.get(name), nested.get(name)))
        if model in _FIXUPS:
            _FIXUPS[model](values)
        return model(**values)

    return build()


def events(event_class: type[CloudEvent]) -> st.SearchStrategy[CloudEvent]:
    return models(event_class)


EVENT_STRATEGIES: dict[type[CloudEvent], st.SearchStrategy[CloudEvent]] = {
    event_class: events(event_class) for event_class in ALL_EVENTS
}
