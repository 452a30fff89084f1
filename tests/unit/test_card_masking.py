"""Card numbers in free-text fields of inputs are masked at the edge; identifiers are not."""

from __future__ import annotations

import base64
import logging
import typing
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic.fields import FieldInfo

from schemas import events as ev
from schemas.base import CloudEvent, Identifier, Model
from schemas.codec import InvalidEvent
from services.card_masking import CARD_NUMBERS_MASKED, CardMasking, MaskedField
from services.domain.bank_routing import (
    DEFAULT_INVOICE_NUMBER_PATTERNS,
    DEFAULT_PAYOUT_PATTERNS,
    IdPatterns,
    RoutingRules,
    ToOrder,
    ToPayout,
    route,
)
from services.domain.payers import PayerDirectory
from services.domain.references import DEFAULT_ORDER_PATTERNS
from services.runtime.edge import RawMessage, admit, masked_value, rejection
from services.settings import Settings
from tests.factories import document

CARD = "4111111111111111"
SPACED = "4111 1111 1111 1111"
# A 16-digit numeric order id that passes the Luhn check, as marketplace ids often do.
LUHN_ORDER = "5555555555554444"
MASKING = CardMasking.from_settings(Settings())


def _line_doc(**fields: Any) -> dict[str, Any]:
    data = {"line_id": "L-1", "account_id": "ACC-1", "booking_date": "2026-11-02",
            "amount": "100.00", "currency": "EUR", **fields}  # fmt: skip
    return document("bank_line.booked", data)


def _raw(doc: dict[str, Any], topic: str = "o2c.bank-lines", key: str = "ACC-1") -> RawMessage:
    return RawMessage(topic, 3, 42, key.encode(), orjson.dumps(doc), datetime.now(UTC))


# --- every string field of an input is classified -----------------------------------


def _models(model: type[Model]) -> list[type[Model]]:
    found = [model]
    for field in model.model_fields.values():
        for arg in typing.get_args(field.annotation):
            if isinstance(arg, type) and issubclass(arg, Model):
                found += _models(arg)
    return found


def _holds_str(annotation: object) -> bool:
    if annotation is str:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return False
    if origin is typing.Annotated:
        return _holds_str(typing.get_args(annotation)[0])
    return any(_holds_str(a) for a in typing.get_args(annotation))


def _is_identifier(field: FieldInfo) -> bool:
    # pydantic lifts an Annotated type's constraints into `metadata`, except in a union.
    (constraints,) = typing.get_args(Identifier)[1:]
    if constraints in field.metadata:
        return True
    return Identifier in typing.get_args(field.annotation)


CLASSIFIED: list[type[CloudEvent]] = [*ev.INPUT_EVENTS, ev.MismatchResolved, ev.MismatchAssigned]


@pytest.mark.parametrize("event_class", CLASSIFIED, ids=lambda c: c.__name__)
def test_every_string_field_of_an_input_is_free_text_or_kept_by_declaration(
    event_class: type[CloudEvent],
) -> None:
    data_class = event_class.model_fields["data"].annotation
    assert isinstance(data_class, type)
    for model in _models(data_class):
        free = set(getattr(model, "free_text_fields", ()))
        kept = set(getattr(model, "kept_text_fields", ()))
        assert free.isdisjoint(kept), model.__name__
        assert free | kept <= set(model.model_fields), model.__name__
        for name, field in model.model_fields.items():
            if _is_identifier(field) or not _holds_str(field.annotation):
                continue
            msg = f"{model.__name__}.{name}: add it to free_text_fields or kept_text_fields"
            assert name in free | kept, msg


def test_identifiers_and_accounts_are_never_free_text() -> None:
    for event_class in CLASSIFIED:
        data_class = event_class.model_fields["data"].annotation
        free = set(getattr(data_class, "free_text_fields", ()))
        assert not {n for n in free if n.endswith("_id")}, event_class.__name__
        assert not free & {"counterparty_account", "bank_accounts", "account_id"}


# --- events ----------------------------------------------------------------------------


def test_a_card_number_in_remittance_text_and_payer_name_is_masked_and_counted() -> None:
    raw = _raw(_line_doc(remittance_info=f"card {SPACED} thanks", counterparty_name=f"X {CARD}"))
    event = ev.BankLineBooked.model_validate_json(raw.value or b"")
    masked, found = MASKING.event(event)
    assert isinstance(masked, ev.BankLineBooked)
    assert masked.data.remittance_info == "card **** **** **** 1111 thanks"
    assert masked.data.counterparty_name == "X ************1111"
    assert found == (MaskedField("counterparty_name", 1), MaskedField("remittance_info", 1))


def test_an_event_without_card_numbers_is_returned_as_it_is() -> None:
    event = ev.BankLineBooked.model_validate(_line_doc(remittance_info="ORD-1 thanks"))
    assert MASKING.event(event) == (event, ())


def test_identifiers_and_account_numbers_are_kept_even_when_they_pass_luhn() -> None:
    doc = _line_doc(
        line_id=CARD, counterparty_account=CARD, end_to_end_id=CARD, bank_reference=CARD
    )
    event = ev.BankLineBooked.model_validate(doc)
    assert MASKING.event(event) == (event, ())


@pytest.mark.parametrize(
    "text",
    [
        f"order no {LUHN_ORDER}",  # a numeric order id a default pattern takes
        f"ORD-{LUHN_ORDER}",  # ORD- followed by digits
        f"payout {LUHN_ORDER}",
        f"invoice {LUHN_ORDER}",
    ],
)
def test_a_number_a_reference_pattern_takes_as_an_id_is_kept(text: str) -> None:
    assert MASKING.text(text) == (text, 0)


def test_a_card_number_beside_a_reference_is_masked_and_the_reference_kept() -> None:
    text = f"paid with {SPACED} for order no {LUHN_ORDER}"
    assert MASKING.text(text) == (f"paid with **** **** **** 1111 for order no {LUHN_ORDER}", 1)


RULES = RoutingRules(
    payouts=IdPatterns(DEFAULT_PAYOUT_PATTERNS),
    orders=IdPatterns(DEFAULT_ORDER_PATTERNS),
    invoices=IdPatterns(()),
    invoice_numbers=IdPatterns(DEFAULT_INVOICE_NUMBER_PATTERNS),
    directory=PayerDirectory.of([]),
    similarity_threshold=Decimal("0.85"),
)


@pytest.mark.parametrize(
    ("remittance", "expected"),
    [
        (f"order no {LUHN_ORDER} card {SPACED}", ToOrder(LUHN_ORDER, "order")),
        (f"card {CARD} ORD-{LUHN_ORDER}", ToOrder(f"ORD-{LUHN_ORDER}", "order")),
        (f"{SPACED} payout po_{LUHN_ORDER}", ToPayout(f"po_{LUHN_ORDER}")),
    ],
)
def test_bank_lines_route_to_the_same_place_after_masking(
    remittance: str, expected: object
) -> None:
    event = ev.BankLineBooked.model_validate(_line_doc(remittance_info=remittance))
    masked, found = MASKING.event(event)
    assert isinstance(masked, ev.BankLineBooked)
    assert found
    assert CARD not in (masked.data.remittance_info or "")
    assert route(masked.data, RULES) == route(event.data, RULES) == expected


@given(st.sampled_from(["", "order ", "ORD-", "ref ", "订单号"]), st.integers(10**12, 10**19 - 1))
def test_masking_never_changes_the_order_id_a_pattern_finds(prefix: str, number: int) -> None:
    text = f"{prefix}{number} paid by {SPACED}"
    patterns = IdPatterns(DEFAULT_ORDER_PATTERNS)
    masked, _count = MASKING.text(text)
    assert patterns.find([masked]) == patterns.find([text])
    assert CARD not in masked.replace(" ", "")


def test_payer_names_are_masked_the_same_on_a_customer_and_a_bank_line() -> None:
    customer = ev.CustomerUpserted.model_validate(
        document(
            "customer.upserted",
            {"customer_id": "C-1", "name": f"Li {CARD}", "payer_names": ["Li", f"Li {CARD}"]},
        )
    )
    masked, found = MASKING.event(customer)
    assert isinstance(masked, ev.CustomerUpserted)
    assert masked.data.payer_names == ("Li", "Li ************1111")
    assert masked.data.name == "Li ************1111"
    assert [f.name for f in found] == ["name", "payer_names[1]"]


# --- the edge step ---------------------------------------------------------------------


def test_the_edge_masks_the_bytes_it_passes_on_keeps_unknown_fields_and_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    doc = _line_doc(remittance_info=f"card {CARD}", note_from_bank="kept as sent")
    raw = _raw(doc)
    before = CARD_NUMBERS_MASKED.labels("o2c.bank-lines")._value.get()
    with caplog.at_level(logging.WARNING):
        masked_raw, event = admit(raw, MASKING)
    assert CARD_NUMBERS_MASKED.labels("o2c.bank-lines")._value.get() == before + 1
    assert isinstance(event, ev.BankLineBooked)
    assert event.data.remittance_info == "card ************1111"
    sent = orjson.loads(masked_raw.value or b"")
    assert sent["data"]["remittance_info"] == "card ************1111"
    assert sent["data"]["note_from_bank"] == "kept as sent"
    assert (masked_raw.topic, masked_raw.partition, masked_raw.offset) == ("o2c.bank-lines", 3, 42)
    (record,) = [r for r in caplog.records if "card numbers masked" in r.getMessage()]
    line = record.getMessage()
    assert "o2c.bank-lines/3@42" in line
    assert "remittance_info" in line
    assert CARD not in line
    assert "1111" not in line


def test_the_edge_passes_a_message_without_card_numbers_unchanged() -> None:
    raw = _raw(_line_doc(remittance_info="ORD-1"))
    masked_raw, _event = admit(raw, MASKING)
    assert masked_raw is raw


def test_a_rerouted_copy_carries_the_masked_bytes() -> None:
    raw = _raw(_line_doc(remittance_info=f"card {CARD}"))
    assert CARD.encode() not in masked_value(raw)
    broken = RawMessage("o2c.bank-lines", 0, 1, None, f"not json {CARD}".encode(), raw.timestamp)
    assert masked_value(broken) == b"not json ************1111"


def test_a_dead_letter_holds_no_card_number_in_its_bytes_or_reason_but_keeps_identifiers() -> None:
    doc = _line_doc(remittance_info=f"card {CARD}", amount="12.345", line_id=LUHN_ORDER)
    doc["data"]["extra_memo"] = f"cvv for {CARD}"
    raw = _raw(doc)
    with pytest.raises(InvalidEvent) as problem:
        admit(raw, MASKING)
    letter = rejection(raw, InvalidEvent.single("data.memo", f"bad {CARD}", None), "t", MASKING)
    original = orjson.loads(base64.b64decode(letter.data.original_value))
    assert original["data"]["remittance_info"] == "card ************1111"
    assert original["data"]["extra_memo"] == "cvv for ************1111"
    assert original["data"]["line_id"] == LUHN_ORDER  # a replay still names the same line
    assert original["data"]["amount"] == "12.345"
    assert CARD not in letter.data.error
    assert "decimals" in str(problem.value)


def test_a_dead_letter_of_bytes_that_are_no_event_masks_card_numbers_wherever() -> None:
    for value in [f"garbage {CARD} end".encode(), b"\xff\xfe " + CARD.encode()]:
        raw = RawMessage("o2c.orders", 0, 7, None, value, datetime.now(UTC))
        letter = rejection(raw, InvalidEvent.single("", "not JSON", None), "t", MASKING)
        stored = base64.b64decode(letter.data.original_value)
        assert CARD.encode() not in stored
        assert stored.endswith(b"************1111" + (b" end" if b"end" in value else b""))


class _Recorder:
    """Stands in for the producer: what `publish` would send."""

    def __init__(self) -> None:
        self.sent: list[CloudEvent] = []

    def send(self, event: CloudEvent) -> None:
        self.sent.append(event)

    def flush(self) -> int:
        return len(self.sent)


def test_a_card_number_typed_into_a_resolution_note_is_masked_before_publishing() -> None:
    from services import manual_actions

    found = {"mismatch_id": "mm-1", "reason": "OVERPAID", "status": "open",
             "order_id": "ORD-1", "payment_id": None, "payout_id": None, "line_id": None,
             "customer_id": "C-1"}  # fmt: skip
    note = f"refunded to card {SPACED}"
    event = manual_actions.resolution(
        found, note, by="ann", source="web", now=datetime(2026, 11, 2, tzinfo=UTC)
    )
    out = _Recorder()
    manual_actions.publish(out, [event])  # type: ignore[arg-type]
    (sent,) = out.sent
    assert isinstance(sent, ev.MismatchResolved)
    assert sent.data.note == "refunded to card **** **** **** 1111"
    assert sent.id == event.id
