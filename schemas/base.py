"""The CloudEvents 1.0 envelope and the base classes every event of the contract builds on."""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StringConstraints,
    model_validator,
)
from pydantic_core import TzInfo

from schemas.money import CURRENCY_DECIMALS, currency_decimals, decimals_of

# Fixed-offset zones already found whole: most timestamps decoded share a few of them
# (pydantic hands out one TzInfo per offset), and utcoffset() is most of this check's
# cost. A zone with rules (zoneinfo) is never kept: its offset changes with the date.
_WHOLE_MINUTE_ZONES: set[tzinfo] = set()
_FIXED_OFFSET_ZONES = (timezone, TzInfo)


def _whole_minute_offset(moment: datetime) -> datetime:
    zone = moment.tzinfo
    if zone in _WHOLE_MINUTE_ZONES:
        return moment
    offset = moment.utcoffset()
    if offset is not None and offset.seconds % 60:
        # RFC 3339 offsets have minutes at most: seconds would be lost on the wire.
        raise ValueError(f"offset {offset} is not a whole number of minutes")
    if zone is not None and type(zone) in _FIXED_OFFSET_ZONES:
        _WHOLE_MINUTE_ZONES.add(zone)  # at most one per whole-minute offset: bounded
    return moment


Timestamp = Annotated[AwareDatetime, AfterValidator(_whole_minute_offset)]

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=False)]
Text = Annotated[str, StringConstraints(max_length=4000)]


class Model(BaseModel):
    # Unknown fields are ignored, not rejected: the contract lets producers add optional
    # fields to a .v1 type, and older consumers must keep working when they do.
    model_config = ConfigDict(frozen=True, extra="ignore")


class EventData(Model):
    """The `data` of one event type. `money_fields` must fit the event's `currency`."""

    money_fields: ClassVar[tuple[str, ...]] = ()
    # Strings people or upstream systems write freely, where a card number may turn up:
    # masked at the edge (services/card_masking.py). Every other string field of an input
    # is an identifier, a code or an account number that matching reads as sent, and is
    # named in `kept_text_fields` unless it is an `Identifier` (tests enforce the split).
    free_text_fields: ClassVar[tuple[str, ...]] = ()
    kept_text_fields: ClassVar[tuple[str, ...]] = ()

    # `money_fields` as (field, None) or, for "items[].gross", (list field, its field),
    # worked out once per class: the check runs on every event decoded.
    _money_plan: ClassVar[tuple[tuple[str, str | None], ...]] = ()
    _has_currency: ClassVar[bool] = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._has_currency = "currency" in cls.model_fields
        cls._money_plan = tuple(
            (list_name, field or None)
            for list_name, _, field in (name.partition("[].") for name in cls.money_fields)
        )

    @model_validator(mode="after")
    def _amounts_fit_their_currency(self) -> Self:
        # A class without the field takes pydantic's slow missing-attribute path here.
        currency = self.currency if self._has_currency else None  # type: ignore[attr-defined]
        if currency is None:
            return self
        allowed = currency_decimals(currency)
        # Most amounts carry exactly the currency's decimals: same_quantum answers those
        # in a fifth of the time decimals_of (as_tuple) takes; the others are counted.
        quantum = _QUANTUM[allowed]
        for name, field in self._money_plan:
            if field is None:
                value = getattr(self, name)
                if value is not None and not value.same_quantum(quantum):
                    _check_decimals(name, value, currency, allowed)
            else:
                for i, item in enumerate(getattr(self, name)):
                    value = getattr(item, field)
                    if value is not None and not value.same_quantum(quantum):
                        _check_decimals(f"{name}[{i}].{field}", value, currency, allowed)
        return self


_QUANTUM = {places: Decimal(1).scaleb(-places) for places in set(CURRENCY_DECIMALS.values())}


def _check_decimals(label: str, value: Decimal, currency: str, allowed: int) -> None:
    places = decimals_of(value)
    if places > allowed:
        raise ValueError(f"{label} {value} has {places} decimals but {currency} allows {allowed}")


class CloudEvent(Model):
    """A CloudEvents 1.0 event in structured JSON mode.

    `key_fields` lists the data fields that give the Kafka message key, first present wins.
    """

    key_fields: ClassVar[tuple[str, ...]] = ()

    specversion: Literal["1.0"]
    id: Identifier
    source: Identifier
    type: str
    time: Timestamp
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    # Extension attribute on every output: the id of the input event that caused it.
    causationid: str | None = None
    data: EventData

    def partition_key(self) -> str | None:
        for name in self.key_fields:
            value = getattr(self.data, name, None)
            if value:
                return str(value)
        return None
