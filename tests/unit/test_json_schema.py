from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.base import CloudEvent
from schemas.codec import decode_document, encode
from schemas.events import ALL_EVENTS, type_name
from schemas.json_schema import SCHEMA_DIR, SUFFIX, export_json_schemas, schema_file_name
from tests.factories import document
from tests.strategies import EVENT_STRATEGIES

REGENERATE = "schemas/json/ is stale: run `o2c schemas export` and commit the result"


def test_committed_schemas_are_not_stale(tmp_path: Path) -> None:
    written = export_json_schemas(tmp_path)
    fresh = {p.name: p.read_bytes() for p in written}
    committed = {p.name: p.read_bytes() for p in SCHEMA_DIR.glob("*" + SUFFIX)}
    assert sorted(committed) == sorted(fresh), REGENERATE
    for name, content in fresh.items():
        assert committed[name] == content, f"{name}: {REGENERATE}"


def test_one_schema_per_event_type() -> None:
    names = sorted(schema_file_name(c) for c in ALL_EVENTS)
    assert names == sorted(p.name for p in SCHEMA_DIR.glob("*" + SUFFIX))
    assert "o2c.order.placed.v1.schema.json" in names


def test_export_deletes_schemas_of_types_that_no_longer_exist(tmp_path: Path) -> None:
    gone = tmp_path / "o2c.order.teleported.v1.schema.json"
    gone.write_text("{}")
    keep = tmp_path / "notes.json"
    keep.write_text("{}")
    export_json_schemas(tmp_path)
    assert not gone.exists()
    assert keep.exists()


def _schema(event_type: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((SCHEMA_DIR / f"{event_type}{SUFFIX}").read_text())
    return result


@cache
def _validator(event_type: str) -> Any:
    return jsonschema.Draft202012Validator(
        _schema(event_type), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _errors(event_type: str, instance: dict[str, Any]) -> list[str]:
    validator = _validator(event_type)
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


@pytest.mark.parametrize("event_class", ALL_EVENTS, ids=type_name)
def test_every_schema_is_a_valid_draft_2020_12_schema(event_class: type[CloudEvent]) -> None:
    schema = _schema(type_name(event_class))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://o2c-matcher.dev/schemas/{type_name(event_class)}{SUFFIX}"
    assert schema["title"] == type_name(event_class)
    assert schema["properties"]["type"]["const"] == type_name(event_class)
    assert "Kafka message key" in schema["description"]


@pytest.mark.parametrize("event_class", ALL_EVENTS, ids=type_name)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_valid_event_validates_against_its_schema(
    event_class: type[CloudEvent], data: st.DataObject
) -> None:
    event = data.draw(EVENT_STRATEGIES[event_class], label="event")
    assert _errors(event.type, orjson.loads(encode(event))) == []


def _payout() -> dict[str, Any]:
    return document(
        "payout.reported",
        {
            "payout_id": "po-1",
            "provider": "stripe",
            "currency": "CNY",
            "gross_amount": "300.00",
            "fee_amount": "-3.00",
            "net_amount": "297.00",
            "payout_date": "2026-11-03",
            "items": [
                {
                    "payment_id": "p1",
                    "order_id": "o1",
                    "kind": "charge",
                    "gross": "300.00",
                    "fee": "-3.00",
                },
            ],
        },
    )


def _payment(**change: Any) -> dict[str, Any]:
    data = {
        "payment_id": "pay-1",
        "order_id": "ORD-1",
        "method": "alipay",
        "amount": "129.90",
        "currency": "CNY",
        "fee_amount": "0.78",
        "captured_at": "2026-11-01T10:00:05+08:00",
    }
    return document("payment.captured", {**data, **change})


def test_valid_samples_validate_against_their_schemas() -> None:
    samples = [
        _payment(),
        _payment(amount="12000", fee_amount=None, currency="JPY"),
        _payment(amount="1.234", currency="KWD", extra_field_from_a_newer_producer=1),
        _payout(),
        document("customer.upserted", {"customer_id": "c", "name": "n"}),
        document(
            "customer.upserted",
            {"customer_id": "c", "name": "n", "credit_limit": "5", "currency": "USD"},
        ),
        document("order.amended", {"order_id": "o", "total_amount": "1.123456"}),
        document("day.closed", {"date": "2026-11-02"}),
    ]
    for sample in samples:
        sample["data"] = {k: v for k, v in sample["data"].items() if v is not None}
        decode_document(copy.deepcopy(sample))  # o2c-matcher accepts it, so must the schema
        assert _errors(sample["type"], sample) == []


@pytest.mark.parametrize(
    ("sample", "where"),
    [
        (_payment(amount=129.9), "data.amount"),
        (_payment(amount=130), "data.amount"),
        (_payment(fee_amount=0.78), "data.fee_amount"),
        (_payment(amount="-1.00"), "data.amount"),
        (_payment(amount="1e3"), "data.amount"),
        (_payment(amount="0129.90"), "data.amount"),
        (_payment(amount="1234567890123456789.00"), "data.amount"),
        (_payment(amount="129.901"), "data.amount"),  # CNY allows 2 decimals
        (_payment(amount="12.5", currency="JPY"), "data.amount"),  # JPY allows none
        (_payment(currency="XXX"), "data.currency"),
    ],
)
def test_schema_rejects_what_o2c_matcher_rejects(sample: dict[str, Any], where: str) -> None:
    with pytest.raises(ValueError):
        decode_document(copy.deepcopy(sample))
    errors = _errors("o2c.payment.captured.v1", sample)
    assert any(e.startswith(f"{where}:") for e in errors), errors


def test_decimals_of_payout_items_follow_the_payout_currency() -> None:
    sample = _payout()
    sample["data"]["items"][0]["fee"] = "-3.005"
    with pytest.raises(ValueError):
        decode_document(copy.deepcopy(sample))
    assert any(e.startswith("data.items.0.fee:") for e in _errors(sample["type"], sample))


def test_amount_schema_is_a_string_with_the_pattern_of_money_py() -> None:
    amount = _schema("o2c.payment.captured.v1")["$defs"]["PaymentCapturedData"]["properties"][
        "amount"
    ]
    assert amount["type"] == "string"
    assert amount["pattern"] == r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,6})?$"
