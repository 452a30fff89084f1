"""What people read (o2c tail, o2c dlq show, the workbench) shows accounts and card numbers
masked; identifiers as sent."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader

from schemas import events as ev
from services.cli.commands import _one_line, shown_dead_letter
from services.dead_letters import DeadLetter
from services.display_masking import (
    DISPLAY_FILTERS,
    mask_event_document,
    mask_key,
    mask_message_value,
)
from tests.factories import document

CARD = "4111111111111111"
IBAN = "NL91ABNA0417164300"
SPACED_IBAN = "DE89 3704 0044 0532 0130 00"
TEMPLATES = Path(__file__).resolve().parents[2] / "services" / "web" / "templates"


def _line(**fields: Any) -> dict[str, Any]:
    data = {"line_id": CARD, "account_id": IBAN, "booking_date": "2026-11-02",
            "amount": "10.00", "currency": "EUR", "counterparty_account": SPACED_IBAN,
            "remittance_info": f"card {CARD} from {IBAN}", **fields}  # fmt: skip
    return document("bank_line.booked", data)


def test_a_bank_line_shows_accounts_and_free_text_masked_and_its_ids_as_sent() -> None:
    data = mask_event_document(_line())["data"]
    assert data["account_id"] == "**************4300"
    assert data["counterparty_account"] == "**** **** **** **** **30 00"
    assert data["remittance_info"] == "card ************1111 from **************4300"
    assert data["line_id"] == CARD  # an identifier: people search for it


def test_a_customer_shows_its_bank_accounts_masked() -> None:
    doc = document("customer.upserted", {"customer_id": "C-1", "name": "Ann",
                                         "bank_accounts": [IBAN, "6222021234567890"]})  # fmt: skip
    assert mask_event_document(doc)["data"]["bank_accounts"] == [
        "**************4300",
        "************7890",
    ]


def test_bytes_that_are_no_event_lose_every_card_number_and_iban() -> None:
    assert (
        mask_message_value(f"x {CARD} {IBAN}".encode()) == b"x ************1111 **************4300"
    )
    plain = orjson.dumps(document("order.cancelled", {"order_id": "ORD-1"}))
    assert mask_message_value(plain) is plain


def test_the_bank_lines_key_is_an_account_and_other_keys_are_ids() -> None:
    assert mask_key("o2c.bank-lines", IBAN) == "**************4300"
    assert mask_key("o2c.orders", CARD) == CARD


def test_tail_prints_a_bank_line_with_no_full_account_or_card_number() -> None:
    line = _one_line(0, 5, orjson.dumps(_line()))
    assert CARD not in line.replace(f"line_id={CARD}", "")
    assert IBAN not in line
    assert SPACED_IBAN not in line
    assert "counterparty_account=**** **** **** **** **30 00" in line


def _letter(value: bytes, error: str = "data.amount: bad") -> DeadLetter:
    at = datetime(2026, 11, 2, tzinfo=UTC)
    return DeadLetter(
        ev.EventRejected.model_validate(
            document(
                "event.rejected",
                {
                    "original_topic": "o2c.bank-lines",
                    "partition": 0,
                    "offset": 9,
                    "original_key": IBAN,
                    "error": error,
                    "rejected_at": at.isoformat(),
                    "original_value": base64.b64encode(value).decode(),
                },
            )
        )
    )


def test_dlq_show_masks_the_key_reason_and_bytes_unless_revealed() -> None:
    value = orjson.dumps(_line(amount="10.001"))
    letter = _letter(value, error=f"counterparty_account {IBAN} unknown")
    shown = "\n".join(shown_dead_letter(letter))
    assert IBAN not in shown
    assert "".join(SPACED_IBAN.split()) not in "".join(shown.split())
    assert CARD not in shown.replace(f'"line_id": "{CARD}"', "")
    assert "--reveal shows it" in shown
    revealed = "\n".join(shown_dead_letter(letter, reveal=True))
    assert IBAN in revealed
    assert SPACED_IBAN in revealed


def test_the_workbench_filters_mask_notes_and_summaries() -> None:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters.update(DISPLAY_FILTERS)
    env.filters["when"] = str
    env.globals["t"] = lambda key: key
    row = {"event_id": "e1", "event_time": "t", "type": "o2c.mismatch.resolved.v1",
           "summary": f"mismatch resolved: note refund to {CARD} from {SPACED_IBAN}",
           "by_user": "ann", "source": "web", "causation_id": None}  # fmt: skip
    html = env.get_template("timeline_table.html").render(events=[row])
    assert CARD not in html
    assert SPACED_IBAN not in html
    assert "************1111" in html
    assert DISPLAY_FILTERS["account"](None) == ""
    assert DISPLAY_FILTERS["account"](IBAN) == "**************4300"
