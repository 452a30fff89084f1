from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest
from pydantic import ValidationError

from schemas import events as ev
from schemas.codec import InvalidEvent, decode, encode
from tests.factories import document, order_placed, payment_captured


def test_payment_round_trips_through_json_unchanged() -> None:
    payment = payment_captured("pay-1", "ORD-1", "129.90")
    assert decode(encode(payment)) == payment
    assert b'"amount":"129.90"' in encode(payment)


def test_amount_keeps_its_trailing_zero() -> None:
    order = order_placed("ORD-1", "100.00")
    assert order.data.total_amount == Decimal("100.00")  # type: ignore[attr-defined]
    assert b'"total_amount":"100.00"' in encode(order)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"amount": 129.9}, "data.amount", "not the JSON number"),
        ({"amount": "129.901"}, "data", "CNY allows 2"),
        ({"amount": "12", "currency": "JPY"}, None, None),
        ({"amount": "12.5", "currency": "JPY"}, "data", "JPY allows 0"),
        ({"amount": "1.234", "currency": "KWD"}, None, None),
        ({"currency": "XXX"}, "data.currency", "unknown ISO 4217"),
        ({"captured_at": "2026-11-01T10:00:05"}, "data.captured_at", "timezone"),
        ({"amount": "-1.00"}, "data.amount", "negative"),
        ({"amount": "NaN"}, "data.amount", "decimal string"),
    ],
)
def test_payment_amount_and_currency_rules(
    change: dict[str, object], field: str | None, words: str | None
) -> None:
    data = {
        "payment_id": "p",
        "order_id": "o",
        "method": "card",
        "amount": "1.00",
        "currency": "CNY",
        "captured_at": "2026-11-01T10:00:05Z",
        **change,
    }
    raw = orjson.dumps(document("payment.captured", data))
    if field is None:
        decode(raw)
        return
    with pytest.raises(InvalidEvent) as caught:
        decode(raw)
    assert any(p.field == field and str(words) in p.message for p in caught.value.problems), str(
        caught.value
    )


def test_unknown_type_is_named_in_the_error() -> None:
    raw = orjson.dumps(document("payment.teleported", {}))
    with pytest.raises(InvalidEvent, match=r"unknown event type 'o2c\.payment\.teleported\.v1'"):
        decode(raw)


def test_error_carries_the_event_id_for_the_report() -> None:
    raw = orjson.dumps(document("order.placed", {"order_id": "o"}, id="evt-42"))
    with pytest.raises(InvalidEvent) as caught:
        decode(raw)
    assert caught.value.event_id == "evt-42"
    assert "data.customer_id: missing required field" in str(caught.value)


@pytest.mark.parametrize("raw", [b"", b"   ", b"{", b"[]", b'"text"'])
def test_messages_that_are_not_json_objects_are_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidEvent):
        decode(raw)


def _captured(**change: object) -> dict[str, object]:
    return {
        "payment_id": "p",
        "method": "card",
        "amount": "1.00",
        "currency": "EUR",
        "captured_at": "2026-11-01T10:00:05Z",
        **change,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # Fewer decimals than the currency's, or as many, with trailing zeros: accepted.
        ({"amount": "12"}, None),
        ({"amount": "12.5"}, None),
        ({"amount": "12.50", "fee_amount": "0"}, None),
        ({"amount": "1.0", "currency": "KWD"}, None),
        # The count is of the decimals written, not of the value: 12.50 yen has two.
        ({"amount": "12.50", "currency": "JPY"}, "amount 12.50 has 2 decimals but JPY allows 0"),
        ({"fee_amount": "0.125"}, "fee_amount 0.125 has 3 decimals but EUR allows 2"),
        ({"amount": "0.000001"}, "amount 0.000001 has 6 decimals but EUR allows 2"),
    ],
)
def test_decimals_are_counted_as_written_against_the_currency(
    change: dict[str, object], message: str | None
) -> None:
    raw = orjson.dumps(document("payment.captured", _captured(**change)))
    if message is None:
        decode(raw)
        return
    with pytest.raises(InvalidEvent) as caught:
        decode(raw)
    assert [(p.field, p.message) for p in caught.value.problems] == [("data", message)]


def test_a_payout_item_with_too_many_decimals_is_named_by_its_position() -> None:
    item = {"payment_id": "p", "kind": "charge", "gross": "10.00", "fee": "0.30"}
    data = {
        "payout_id": "po",
        "provider": "stripe",
        "currency": "EUR",
        "gross_amount": "20.00",
        "fee_amount": "0.60",
        "net_amount": "19.40",
        "items": [item, {**item, "fee": "0.305"}],
        "payout_date": "2026-11-01",
    }
    with pytest.raises(InvalidEvent) as caught:
        decode(orjson.dumps(document("payout.reported", data)))
    assert "items[1].fee 0.305 has 3 decimals but EUR allows 2" in str(caught.value)


def test_an_offset_with_seconds_is_refused_after_whole_minute_ones_were_seen() -> None:
    # The check keeps fixed zones it found whole; a zone with rules is asked every time:
    # Amsterdam was +00:19:32 until 1937 and is +01:00 now.
    amsterdam = ZoneInfo("Europe/Amsterdam")
    base = {"payment_id": "p", "method": "card", "amount": Decimal("1.00"), "currency": "EUR"}
    for moment in (
        datetime(2026, 11, 1, 10, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 11, 1, 10, tzinfo=amsterdam),
    ):
        ev.PaymentCapturedData(**base, captured_at=moment)
    for moment in (
        datetime(2026, 11, 1, 10, tzinfo=timezone(timedelta(hours=1, seconds=30))),
        datetime(1900, 11, 1, 10, tzinfo=amsterdam),
    ):
        with pytest.raises(ValidationError, match="not a whole number of minutes"):
            ev.PaymentCapturedData(**base, captured_at=moment)
