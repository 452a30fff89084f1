"""What people read on a terminal or a page: account numbers and IBANs show their last four
characters, card numbers their last four digits (issue 21).

Unlike the edge's masking (services/card_masking.py), nothing here is stored or matched:
it shapes what is printed. Fields that hold an account number are masked whole; free-text
fields (the models' `free_text_fields`) lose their card numbers and IBANs; identifiers are
shown as sent, so a person can search for them. Text whose fields are unknown (a message
that is not an event) loses every card number and IBAN in it.

Example:
    mask_event_document(orjson.loads(value))  # counterparty_account "**************4300"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from schemas.topics import BANK_LINES
from services.card_masking import data_class_of
from services.masking import mask_account, mask_for_display

# Data fields that hold account numbers or IBANs, wherever they appear.
ACCOUNT_FIELDS = frozenset({"account_id", "counterparty_account", "bank_accounts"})


def mask_text(text: str) -> str:
    """Card numbers and IBANs anywhere in `text` (a reason, a log line, a note)."""
    return mask_for_display(text)


def mask_field(name: str, value: Any, free_text: frozenset[str] | set[str]) -> Any:
    """One data field's value, masked as its name says."""
    if value is None:
        return None
    if name in ACCOUNT_FIELDS:
        return _each(value, mask_account)
    if name in free_text:
        return _each(value, mask_for_display)
    return value


def mask_data(event_type: str | None, data: dict[str, Any]) -> dict[str, Any]:
    """An event's data (as JSON) with accounts, and cards and IBANs in free text, masked."""
    data_class = data_class_of(event_type)
    known = set() if data_class is None else set(data_class.model_fields)
    free = set() if data_class is None else set(data_class.free_text_fields)
    # A field the contract does not know could hold anything: treated as free text.
    free |= {name for name in data if name not in known}
    return {name: mask_field(name, value, free) for name, value in data.items()}


def mask_event_document(doc: Any) -> Any:
    """A CloudEvent as parsed JSON, masked for display (anything else: as text)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        return _each(doc, mask_for_display)
    kind = doc.get("type") if isinstance(doc.get("type"), str) else None
    return {**doc, "data": mask_data(kind, doc["data"])}


def mask_message_value(value: bytes) -> bytes:
    """A message's bytes for display: the event masked, or the whole text when the bytes
    are not JSON. The bytes come back unchanged when nothing was masked."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        text = value.decode("utf-8", "replace")
        masked = mask_for_display(text)
        return value if masked == text else masked.encode()
    masked_doc = mask_event_document(doc)
    return value if masked_doc == doc else orjson.dumps(masked_doc)


def mask_key(topic: str, key: str | None) -> str | None:
    """A message key: the bank-lines topic is keyed by account id, an account number;
    other keys are identifiers, shown as sent."""
    if key is None:
        return None
    return mask_account(key) if topic == BANK_LINES.name else key


def _each(value: Any, mask: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list | tuple):
        return [_each(item, mask) for item in value]
    if isinstance(value, dict):
        return {k: _each(v, mask) for k, v in value.items()}
    return value


# The web app's Jinja filters: `value|account` for a field holding an account number or
# IBAN (last four shown), `text|masked` for free text (a note, a timeline summary).
def _blank_safe(mask: Callable[[str], str]) -> Callable[[str | None], str]:
    return lambda value: "" if value is None else mask(str(value))


DISPLAY_FILTERS: dict[str, Callable[[str | None], str]] = {
    "account": _blank_safe(mask_account),
    "masked": _blank_safe(mask_text),
}
