"""Every event type survives encode → decode unchanged, and re-encodes to the same bytes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import decode, encode
from schemas.events import ALL_EVENTS, EVENT_CLASS_BY_TYPE, type_name
from tests.strategies import EVENT_STRATEGIES


def test_strategies_cover_every_event_type() -> None:
    assert set(EVENT_STRATEGIES) == set(ALL_EVENTS)
    assert set(EVENT_STRATEGIES) == set(EVENT_CLASS_BY_TYPE.values())


def exact(value: Any) -> Any:
    """A model dump in which 1.50 ≠ 1.5, -0 ≠ 0 and 10:00+01:00 ≠ 09:00Z, unlike with ==."""
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [exact(v) for v in value]
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    if isinstance(value, datetime):
        return ("datetime", value.replace(tzinfo=None), value.utcoffset())
    return value


def assert_round_trips(event: CloudEvent) -> None:
    raw = encode(event)
    decoded = decode(raw)
    assert type(decoded) is type(event)
    assert decoded == event
    assert exact(decoded.model_dump()) == exact(event.model_dump())
    assert encode(decoded) == raw


# 50 examples of each of the 25 types take about 10 s.
@pytest.mark.parametrize("event_class", ALL_EVENTS, ids=type_name)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_event_round_trips_through_json(event_class: type[CloudEvent], data: st.DataObject) -> None:
    event = data.draw(EVENT_STRATEGIES[event_class], label="event")
    assert type(event) is event_class
    assert_round_trips(event)


# --- values the wire cannot carry are refused when the event is built ----------------------

T = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _rejected_or_round_trips(build: Callable[[], CloudEvent]) -> None:
    try:
        event = build()
    except ValidationError:
        return
    assert_round_trips(event)


def _order(total: Decimal, unit_price: Decimal) -> CloudEvent:
    line = ev.OrderLine(sku="s", quantity=Decimal(1), unit_price=unit_price)
    data = ev.OrderPlacedData(
        order_id="o",
        customer_id="c",
        channel="web",
        currency="CNY",
        total_amount=total,
        placed_at=T,
        lines=(line,),
    )
    return ev.OrderPlaced(
        specversion="1.0", id="e", source="s", type="o2c.order.placed.v1", time=T, data=data
    )


@pytest.mark.parametrize(
    ("total", "unit_price"),
    [(Decimal("1E+18"), Decimal(1)), (Decimal(1), Decimal("0.0000001"))],
    ids=["19 integer digits", "7 decimals"],
)
def test_amount_beyond_the_decimal_string_range(total: Decimal, unit_price: Decimal) -> None:
    _rejected_or_round_trips(lambda: _order(total, unit_price))


def test_offset_with_seconds() -> None:
    at = datetime(1900, 1, 1, 12, tzinfo=timezone(timedelta(hours=8, minutes=5, seconds=43)))
    _rejected_or_round_trips(
        lambda: ev.DayClosed(
            specversion="1.0",
            id="e",
            source="s",
            type="o2c.day.closed.v1",
            time=at,
            data=ev.DayClosedData(date=date(1900, 1, 1)),
        )
    )


def test_offset_beyond_64_bits() -> None:
    _rejected_or_round_trips(
        lambda: ev.EventRejected(
            specversion="1.0",
            id="e",
            source="s",
            type="o2c.event.rejected.v1",
            time=T,
            data=ev.EventRejectedData(
                original_topic="o2c.orders",
                partition=0,
                offset=2**64,
                original_value="",
                error="e",
                rejected_at=T,
            ),
        )
    )
