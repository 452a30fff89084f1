"""Card numbers out of the free-text fields of events, before anything reads them.

Which fields are free text is declared beside the models (`free_text_fields` in
schemas/events.py); identifiers, keys and account numbers that matching reads are never
masked here (accounts are masked where people look: services/display_masking.py).

One rule decides between a card number and a reference: a number that a configured
reference pattern (order, payout, invoice: the settings' `*_patterns`) takes as an id is
left as it is, because matching reads it. "order no 4111111111111111" in a remittance text
still names order 4111111111111111; "paid with 4111 1111 1111 1111, order ORD-7" is masked
and still names ORD-7. Numeric order ids of 13-19 digits are common (marketplaces), and one
in ten passes the Luhn check by chance: masking them would break matching for those.

Example:
    masking = CardMasking.from_settings(get_settings())
    event, found = masking.event(event)   # found: (MaskedField("remittance_info", 1),)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from prometheus_client import Counter

from schemas.base import CloudEvent, EventData
from schemas.events import EVENT_CLASS_BY_TYPE
from services.masking import (
    Span,
    contains_card_number,
    mask_card_numbers,
    might_hold_card_number,
)

# Each process counts what it masked (the worker and the projections read some of the
# same inputs): sum over the worker's endpoints for what producers sent.
CARD_NUMBERS_MASKED = Counter(
    "o2c_card_numbers_masked_total",
    "Card numbers masked in free-text fields of input events (and their dead letters)",
    ["topic"],
)

_ARROW = " -> "  # a pattern's expansion template (services/domain/bank_routing.py)


@dataclass(frozen=True)
class MaskedField:
    name: str  # the data field, e.g. "remittance_info" or "payer_names[1]"
    count: int  # card numbers masked in it


@dataclass(frozen=True)
class _Reference:
    regex: re.Pattern[str]
    whole: bool  # a template pattern builds its id from the whole match


class CardMasking:
    """Masks card numbers in free text, except the ids reference patterns find there."""

    def __init__(self, reference_patterns: Iterable[str] = ()) -> None:
        self._references = tuple(_reference(spec) for spec in reference_patterns)

    @classmethod
    def from_settings(cls, settings: Any) -> CardMasking:
        """Every pattern matching reads ids with: a number any of them takes is kept."""
        return cls(
            (
                *settings.payout_patterns,
                *settings.reference_patterns,
                *settings.invoice_patterns,
                *settings.invoice_number_patterns,
            )
        )

    def text(self, text: str) -> tuple[str, int]:
        """`text` with its card numbers masked, and how many."""
        if not contains_card_number(text):  # the common case: no reference search needed
            return text, 0
        return mask_card_numbers(text, self._kept(text))

    def _kept(self, text: str) -> list[Span]:
        spans: list[Span] = []
        for ref in self._references:
            for found in ref.regex.finditer(text):
                if ref.whole:
                    spans.append(found.span())
                    continue
                group = "id" if "id" in ref.regex.groupindex else 1
                if found.start(group) >= 0:
                    spans.append(found.span(group))
        return spans

    def event(self, event: CloudEvent) -> tuple[CloudEvent, tuple[MaskedField, ...]]:
        """`event` with card numbers masked in its data's free-text fields (the same
        object when there were none), and the fields that had some."""
        data = event.data
        names = type(data).free_text_fields
        if not names:
            return event, ()
        changes: dict[str, object] = {}
        found: list[MaskedField] = []
        for name in names:
            value = getattr(data, name)
            if value is None or (isinstance(value, str) and not might_hold_card_number(value)):
                continue  # the common case, kept cheap: this runs for every input event
            masked = self._value(name, value, found)
            if masked is not value:
                changes[name] = masked
        if not changes:
            return event, ()
        masked_event = event.model_copy(update={"data": data.model_copy(update=changes)})
        return masked_event, tuple(found)

    def _value(self, name: str, value: object, found: list[MaskedField]) -> object:
        if isinstance(value, str):
            masked, count = self.text(value)
            if count:
                found.append(MaskedField(name, count))
                return masked
        elif isinstance(value, tuple | list):
            items = [self._value(f"{name}[{i}]", item, found) for i, item in enumerate(value)]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                return type(value)(items)
        return value

    def value(self, value: bytes, masked: CloudEvent) -> bytes:
        """The message bytes `value` of an event with the free-text fields of `masked`
        (what `event` returned for it): every other byte of the producer's JSON, unknown
        fields included, is kept, so internal copies and dead letters stay what was sent
        but for the card numbers."""
        doc = orjson.loads(value)
        data = doc["data"]
        for name in type(masked.data).free_text_fields:
            if name in data:
                field = getattr(masked.data, name)
                data[name] = list(field) if isinstance(field, tuple) else field
        return orjson.dumps(doc)

    def rejected_value(self, value: bytes) -> tuple[bytes, int]:
        """The bytes of a message the edge refused, for its dead letter, with card numbers
        masked, and how many. A JSON event of a known type: in its free-text fields and in
        data fields the contract does not know (identifiers stay as sent, so a replay
        still matches). Anything else: wherever they are, since no field can be told."""
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            doc = None
        data_class = data_class_of(doc.get("type")) if isinstance(doc, dict) else None
        data = doc.get("data") if isinstance(doc, dict) else None
        if data_class is None or not isinstance(data, dict):
            return _mask_bytes(value)
        free = set(data_class.free_text_fields)
        known = set(data_class.model_fields)
        count = 0
        for name, field in list(data.items()):
            if name in free or name not in known:
                data[name], n = self._json_value(field)
                count += n
        return (orjson.dumps(doc), count) if count else (value, 0)

    def _json_value(self, value: Any) -> tuple[Any, int]:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, int) and not isinstance(value, bool):
            masked, count = self.text(str(value))
            return (masked, count) if count else (value, 0)
        if isinstance(value, list):
            pairs = [self._json_value(item) for item in value]
            return [v for v, _ in pairs], sum(n for _, n in pairs)
        if isinstance(value, dict):
            total = 0
            for key, item in list(value.items()):
                value[key], n = self._json_value(item)
                total += n
            return value, total
        return value, 0


_DATA_CLASSES: dict[str, type[EventData]] = {
    name: cast("type[EventData]", event_class.model_fields["data"].annotation)
    for name, event_class in EVENT_CLASS_BY_TYPE.items()
}


def data_class_of(event_type: object) -> type[EventData] | None:
    """The data model of an event type named in a message, None for one the contract lacks."""
    return _DATA_CLASSES.get(event_type) if isinstance(event_type, str) else None


def _reference(spec: str) -> _Reference:
    source, _, template = spec.partition(_ARROW)
    return _Reference(re.compile(source), bool(template))


def _mask_bytes(value: bytes) -> tuple[bytes, int]:
    """Card numbers masked in bytes that are not a known event, keeping every other byte."""
    try:
        text, codec = value.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, codec = value.decode("latin-1"), "latin-1"  # any bytes, one char each
    masked, count = mask_card_numbers(text)
    return (masked.encode(codec), count) if count else (value, 0)


def mask_reason(reason: str) -> str:
    """A dead letter's reason: human text, read by people only, so masked wherever."""
    return mask_card_numbers(reason)[0]


def masked_fields_text(fields: Sequence[MaskedField]) -> str:
    return ", ".join(f"{f.name} ({f.count})" for f in fields)
