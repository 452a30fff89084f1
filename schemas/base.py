"""The CloudEvents 1.0 envelope and the base classes every event of the contract builds on."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StringConstraints,
    model_validator,
)

from schemas.money import currency_decimals, decimals_of


def _whole_minute_offset(moment: datetime) -> datetime:
    offset = moment.utcoffset()
    if offset is not None and offset.seconds % 60:
        # RFC 3339 offsets have minutes at most: seconds would be lost on the wire.
        raise ValueError(f"offset {offset} is not a whole number of minutes")
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

    @model_validator(mode="after")
    def _amounts_fit_their_currency(self) -> Self:
        currency = getattr(self, "currency", None)
        if currency is None:
            return self
        allowed = currency_decimals(currency)
        for name in self.money_fields:
            for label, value in _money_values(self, name):
                if decimals_of(value) > allowed:
                    raise ValueError(
                        f"{label} {value} has {decimals_of(value)} decimals "
                        f"but {currency} allows {allowed}"
                    )
        return self


def _money_values(data: EventData, name: str) -> list[tuple[str, Any]]:
    # "items[].gross" names a field of every element of a list field.
    if "[]." in name:
        list_name, field = name.split("[].", 1)
        return [
            (f"{list_name}[{i}].{field}", getattr(item, field))
            for i, item in enumerate(getattr(data, list_name))
            if getattr(item, field) is not None
        ]
    value = getattr(data, name)
    return [] if value is None else [(name, value)]


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
