"""The trusted decode of o2c-matcher's own outputs (schemas/trusted.py) gives the same
events as the full validation, and so the same read-model rows; bytes it cannot take
as o2c-matcher writes them go through the full validation and its errors."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.model import PROJECTED_TYPES, project
from schemas.codec import InvalidEvent, decode, encode
from schemas.events import EVENT_CLASS_BY_TYPE
from schemas.trusted import TRUSTED_TYPES, decode_trusted
from tests.strategies import EVENT_STRATEGIES
from tests.unit.test_roundtrip import exact

TRUSTED = sorted(TRUSTED_TYPES)


def test_trusted_types_are_outputs_and_include_every_projected_output() -> None:
    assert set(TRUSTED_TYPES) <= set(EVENT_CLASS_BY_TYPE)
    outputs = {
        "o2c.balance.changed.v1",
        "o2c.order.matched.v1",
        "o2c.writeoff.applied.v1",
        "o2c.mismatch.detected.v1",
        "o2c.mismatch.resolved.v1",
        "o2c.mismatch.assigned.v1",
        "o2c.credit_limit.breached.v1",
        "o2c.credit_limit.restored.v1",
    }
    assert outputs <= set(TRUSTED_TYPES)
    assert outputs <= PROJECTED_TYPES
    upstream = {"o2c.order.placed.v1", "o2c.customer.upserted.v1", "o2c.day.closed.v1"}
    assert not upstream & set(TRUSTED_TYPES)


# 40 examples of each of the 11 types take a few seconds.
@pytest.mark.parametrize("kind", TRUSTED)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), offset=st.integers(min_value=0, max_value=2**40))
def test_trusted_decode_yields_the_same_event_and_rows_as_full_validation(
    kind: str, data: st.DataObject, offset: int
) -> None:
    event = data.draw(EVENT_STRATEGIES[EVENT_CLASS_BY_TYPE[kind]], label="event")
    raw = encode(event)
    validated, trusted = decode(raw), decode_trusted(raw)
    assert type(trusted) is type(validated)
    assert trusted == validated
    assert exact(trusted.model_dump()) == exact(validated.model_dump())
    assert trusted.model_fields_set == validated.model_fields_set
    assert encode(trusted) == raw
    assert project([(trusted, offset)]) == project([(validated, offset)])
    rows, expected = project([(trusted, offset)]), project([(validated, offset)])
    assert exact(rows.appended) == exact(expected.appended)
    assert exact(rows.current_balances) == exact(expected.current_balances)


def _balance() -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": "b-1",
        "source": "o2c-matcher",
        "type": "o2c.balance.changed.v1",
        "time": "2026-11-01T10:00:00Z",
        "data": {
            "order_id": "ORD-1",
            "currency": "CNY",
            "receivable": "10.00",
            "paid": "0",
            "refunded": "0",
            "settled": "0",
            "open_balance": "10.00",
            "status": "open",
        },
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["data"].pop("receivable"), "data.receivable"),
        (lambda d: d["data"].update(paid="ten"), "data.paid"),
        (lambda d: d["data"].update(paid=1.5), "data.paid"),
        (lambda d: d.update(time="yesterday"), "time"),
    ],
)
def test_bytes_not_as_o2c_matcher_writes_them_get_the_full_validation_error(
    change: object, field: str
) -> None:
    document = _balance()
    change(document)  # type: ignore[operator]
    with pytest.raises(InvalidEvent) as raised:
        decode_trusted(orjson.dumps(document))
    assert field in str(raised.value)


def test_an_upstream_type_goes_through_the_full_validation() -> None:
    document = _balance() | {"type": "o2c.order.placed.v1"}
    with pytest.raises(InvalidEvent):
        decode_trusted(orjson.dumps(document))


def test_not_json_is_an_invalid_event() -> None:
    with pytest.raises(InvalidEvent):
        decode_trusted(b"{not json")


UNTRUSTED = sorted(set(EVENT_CLASS_BY_TYPE) - set(TRUSTED_TYPES))


@pytest.mark.parametrize("kind", UNTRUSTED)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_another_type_is_the_event_full_validation_gives(kind: str, data: st.DataObject) -> None:
    # The worker's edge reads copies of inputs from internal topics through decode_trusted.
    raw = encode(data.draw(EVENT_STRATEGIES[EVENT_CLASS_BY_TYPE[kind]], label="event"))
    assert decode_trusted(raw) == decode(raw)


def _problems(raw: bytes, **limit: int) -> list[str]:
    outcomes = []
    for decoder in (decode, decode_trusted):
        with pytest.raises(InvalidEvent) as raised:
            decoder(raw, **limit)
        outcomes.append(str(raised.value))
    return outcomes


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'"text"',
        b'{"id": "e-1"}',
        b'{"id": "e-1", "type": ["o2c.order.placed.v1"]}',
        b'{"id": "e-1", "type": "o2c.payment.teleported.v1"}',
        orjson.dumps(_balance() | {"type": "o2c.order.placed.v1"}),
        orjson.dumps(_balance() | {"specversion": "0.3"}),
    ],
)
def test_what_is_not_a_trusted_output_gets_the_error_full_validation_gives(raw: bytes) -> None:
    validated, trusted = _problems(raw)
    assert trusted == validated


def test_another_type_over_the_limit_is_refused_for_its_size() -> None:
    raw = orjson.dumps(_balance() | {"type": "o2c.order.placed.v1"})
    validated, trusted = _problems(raw, max_bytes=len(raw) - 1)
    assert trusted == validated
    assert "exceeds the limit" in trusted
