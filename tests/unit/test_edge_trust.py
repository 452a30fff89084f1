"""The edge validates what upstream systems publish and trusts what o2c-matcher wrote
itself (services/runtime/edge.py, `accept`): its outputs and internal copies are built
from the contract's models, so reading them back does not validate them again."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from schemas.codec import InvalidEvent, decode, encode
from schemas.topics import BALANCES_BY_CUSTOMER, MATCHES, PAYMENTS, Topic
from services.runtime.edge import RawMessage, accept
from tests.factories import T0, document, payment_captured


def _message(topic: Topic, value: bytes, key: str | None = None) -> RawMessage:
    moment = datetime(2026, 11, 2, tzinfo=UTC)
    return RawMessage(topic.name, 0, 0, None if key is None else key.encode(), value, moment)


def _balance_changed(open_balance: str) -> bytes:
    data = {
        "order_id": "ORD-1", "customer_id": "C-1", "currency": "CNY",
        "receivable": "100.00", "paid": "0.00", "refunded": "0.00", "settled": "0.00",
        "open_balance": open_balance, "status": "open", "due_date": "2026-12-02",
        "channel": "web",
    }  # fmt: skip
    return orjson.dumps(document("balance.changed", data, at=T0, source="o2c-matcher"))


@pytest.mark.parametrize("topic", [MATCHES, BALANCES_BY_CUSTOMER], ids=lambda t: t.name)
def test_an_output_read_back_from_o2c_matchers_own_topics_equals_its_validated_decode(
    topic: Topic,
) -> None:
    raw = _balance_changed("100.00")
    assert accept(_message(topic, raw, "ORD-1")) == decode(raw)


@pytest.mark.parametrize("topic", [MATCHES, BALANCES_BY_CUSTOMER], ids=lambda t: t.name)
def test_an_output_on_o2c_matchers_own_topics_is_not_validated_again(topic: Topic) -> None:
    # Three decimals in CNY break the contract: the full decode refuses them, so the edge
    # accepting them shows it built the event without validating it.
    raw = _balance_changed("100.001")
    with pytest.raises(InvalidEvent):
        decode(raw)
    read = accept(_message(topic, raw, "ORD-1"))
    assert read.data.open_balance == Decimal("100.001")  # type: ignore[attr-defined]


def test_an_upstream_fact_on_an_input_topic_is_still_fully_validated() -> None:
    captured = payment_captured("PAY-1", "ORD-1", "10.00")
    raw = encode(captured).replace(b'"10.00"', b'"10.001"')
    with pytest.raises(InvalidEvent, match="decimals"):
        accept(_message(PAYMENTS, raw, "ORD-1"))
    assert accept(_message(PAYMENTS, encode(captured), "ORD-1")) == captured


@pytest.mark.parametrize("value", [b"not json", b"{}", b'{"type": "o2c.balance.changed.v1"}'])
def test_what_does_not_parse_on_o2c_matchers_own_topics_is_still_refused(value: bytes) -> None:
    with pytest.raises(InvalidEvent):
        accept(_message(BALANCES_BY_CUSTOMER, value))
