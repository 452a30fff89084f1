"""SWIFT MT940 (statement) and MT942 (interim report) through the `mt-940` package.

Booking date is the :61: entry date (MMDD, year taken from the value date, as `mt-940`
guesses it), else the value date. Remittance text is `mt-940`'s structured purpose (SEPA
`?20..?29` / `SVWZ+`) when it found one, else the :86: text as the bank wrote it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import mt940

from services.importers.errors import ImportFailed, line_of
from services.importers.events import BankEntry
from services.importers.money import fit_currency

_ANY_TAG = re.compile(r"^(?::[0-9]{2}[A-Z]?:|:NS:)", re.MULTILINE)
_TX_LINE = re.compile(r"^:61:", re.MULTILINE)
# ASN Bank (NL) writes the :61: customer reference longer than SWIFT's 16x; `mt-940` ships
# a tag for exactly that bank, chosen here by the sender BIC in the SWIFT basic header.
_ASN_BANK_HEADER = re.compile(r"\{1:F01ASNB")
_STATEMENT_KEYS = ("account_identification", "statement_number", "sequence_number")
_NO_REFERENCE = {"", "NONREF", "NOTPROVIDED"}

# mt-940 logs every regex it tried, at ERROR, before raising: that is for its developers.
# The ImportFailed raised here names the file and line instead.
logging.getLogger("mt940.tags").setLevel(logging.CRITICAL)


def _stamp_statement(
    transactions: Any, _tag: Any, _tag_dict: dict[str, Any], result: dict[str, Any]
) -> dict[str, Any]:
    # A file may hold statements of several accounts; each entry keeps its own.
    for key in _STATEMENT_KEYS:
        result[f"statement_{key}"] = transactions.data.get(key)
    return result


def _transactions(text: str) -> Any:
    tags: dict[Any, Any] = {}
    if _ASN_BANK_HEADER.search(text):
        asn = mt940.tags.StatementASNB()
        tags[asn.id] = asn
    processors: dict[str, list[Callable[..., Any]]] = {
        "post_statement": [
            *mt940.models.Transactions.DEFAULT_PROCESSORS["post_statement"],
            _stamp_statement,
        ]
    }
    return mt940.models.Transactions(processors=processors, tags=tags)


def _as_date(value: Any) -> date | None:
    return None if value is None else date(value.year, value.month, value.day)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _entry_lines(text: str) -> list[int]:
    """The line number of each :61: in order, counted in one pass over the text."""
    numbers, line, last = [], 1, 0
    for found in _TX_LINE.finditer(text):
        line += text.count("\n", last, found.start())
        last = found.start()
        numbers.append(line)
    return numbers


def decode(raw: bytes) -> str:
    """The encodings `mt-940` tries, in its order: its expected parses were made with them
    (Hungarian banks send code page 852)."""
    for encoding in ("utf-8-sig", "cp852", "iso8859-15"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def parse_mt(path: str, text: str, account: str | None = None) -> list[BankEntry]:
    if not _ANY_TAG.search(text):
        raise ImportFailed(path, "line 1", "no SWIFT MT940/MT942 tag (such as :20: or :61:) found")
    transactions = _transactions(text)
    try:
        transactions.parse(text)
    except (RuntimeError, ValueError) as exc:
        raise _parse_error(path, text, exc) from None
    lines = _entry_lines(text)
    return [
        _entry(
            path, f"line {lines[n]}" if n < len(lines) else f":61: entry {n + 1}", tx.data, account
        )
        for n, tx in enumerate(transactions.transactions)
    ]


def _parse_error(path: str, text: str, exc: Exception) -> ImportFailed:
    message = str(exc.args[0]) if exc.args else str(exc)
    found = re.search(r"from '(.*)'\Z", message, re.DOTALL) or re.search(r"from (.*)", message)
    fragment = found.group(1).encode().decode("unicode_escape") if found else ""
    line = line_of(text, fragment)
    tag = re.search(r"tags\.(\w+)", message)
    tag_id = getattr(getattr(mt940.tags, tag.group(1), None), "id", None) if tag else None
    what = f"cannot parse :{tag_id}: ({tag.group(1) if tag else ''})" if tag_id else "cannot parse"
    return ImportFailed(path, f"line {line}" if line else "", f"{what}: {fragment.strip()!r}")


def _entry(path: str, where: str, data: dict[str, Any], account: str | None) -> BankEntry:
    account_id = account or _text(data.get("statement_account_identification"))
    if not account_id:
        raise ImportFailed(path, where, "no account (:25:) before this entry; pass --account")
    amount = data.get("amount")
    if amount is None:
        raise ImportFailed(path, where, "entry without amount")
    currency = _text(data.get("currency")) or _text(getattr(amount, "currency", None))
    if not currency:
        raise ImportFailed(path, where, "no currency: the statement has no :60F:/:60M: balance")
    value_date = _as_date(data.get("date"))
    booking_date = _as_date(data.get("entry_date")) or value_date
    if booking_date is None:
        raise ImportFailed(path, where, "entry without a date")
    signed_text = Decimal(amount.amount)
    if data.get("status") in ("RC", "RD"):
        # SWIFT: RC reverses a credit (a debit entry), RD a debit (a credit entry); mt-940
        # leaves both with the sign of a credit.
        signed_text = -signed_text
    try:
        signed = fit_currency(signed_text, currency)
    except ValueError as exc:
        raise ImportFailed(path, where, str(exc)) from None
    customer_reference = _text(data.get("customer_reference"))
    end_to_end = _text(data.get("end_to_end_reference"))
    if end_to_end is None and customer_reference not in _NO_REFERENCE:
        end_to_end = customer_reference
    return BankEntry(
        account_id=account_id,
        booking_date=booking_date,
        value_date=value_date,
        amount=signed,
        currency=currency,
        counterparty_name=_text(data.get("applicant_name")),
        counterparty_account=_text(data.get("applicant_iban")),
        remittance_info=remittance_text(data),
        end_to_end_id=end_to_end,
        bank_reference=_text(data.get("bank_reference")),
        where=where,
    )


def remittance_text(data: dict[str, Any]) -> str | None:
    """The reference text of one parsed :61:/:86: pair (also used by the tests)."""
    return _text(data.get("purpose")) or _text(data.get("transaction_details"))
