from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

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
