"""The schema-evolution rule, on one example: a breaking change to payment.captured.

Suppose v2 of payment.captured renamed `reference` to `remittance` (breaking: a v1 consumer
would silently lose the reference). The rule: v2 is a new type, and an upcaster turns v1
documents into v2 so the core sees only the newest model, and old logs still replay.
"""

from __future__ import annotations

from typing import Literal

import orjson
import pytest

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import decode
from schemas.evolution import UPCASTERS, Document
from tests.factories import document

V1 = "o2c.payment.captured.v1"
V2 = "o2c.payment.captured.v2"


class PaymentCapturedV2Data(ev.PaymentCapturedData):
    remittance: str | None = None


class PaymentCapturedV2(CloudEvent):
    key_fields = ("order_id", "payment_id")
    type: Literal["o2c.payment.captured.v2"]
    data: PaymentCapturedV2Data


def payment_captured_v1_to_v2(v1: Document) -> Document:
    data = dict(v1["data"])
    data["remittance"] = data.pop("reference", None)
    return {**v1, "type": V2, "data": data}


@pytest.fixture
def v2_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ev.EVENT_CLASS_BY_TYPE, V2, PaymentCapturedV2)
    monkeypatch.setitem(UPCASTERS, V1, payment_captured_v1_to_v2)


def _payment(kind: str, **data: str) -> bytes:
    fields = {
        "payment_id": "p1",
        "order_id": "ORD-1",
        "method": "bank_transfer",
        "amount": "10.00",
        "currency": "EUR",
        "captured_at": "2026-11-01T10:00:00Z",
        **data,
    }
    return orjson.dumps(document(kind, fields, id="evt-1"))


@pytest.mark.usefixtures("v2_registered")
def test_v1_document_is_upcast_to_the_newest_model() -> None:
    event = decode(_payment(V1.removeprefix("o2c.").removesuffix(".v1"), reference="INV-7"))
    assert isinstance(event, PaymentCapturedV2)
    assert event.data.remittance == "INV-7"
    assert event.id == "evt-1"  # the same event: its idempotency key does not change


@pytest.mark.usefixtures("v2_registered")
def test_v2_document_is_read_as_it_is() -> None:
    raw = _payment("payment.captured", remittance="INV-8").replace(b".v1", b".v2")
    event = decode(raw)
    assert isinstance(event, PaymentCapturedV2)
    assert event.data.remittance == "INV-8"


def test_additive_optional_field_stays_v1_and_older_consumers_ignore_it() -> None:
    event = decode(_payment("payment.captured", loyalty_points="120"))
    assert isinstance(event, ev.PaymentCaptured)
    assert not hasattr(event.data, "loyalty_points")
