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
from services.importers.money import fit_currency, parse_decimal
from services.importers.statement_check import (
    Balance,
    DeclaredStatement,
    DeclaredSum,
    ParsedStatement,
    count_mismatch,
)

_ANY_TAG = re.compile(r"^(?::[0-9]{2}[A-Z]?:|:NS:)", re.MULTILINE)
_TX_LINE = re.compile(r"^:61:", re.MULTILINE)
# A tag as `mt-940` finds one (it also allows a line break after the first colon).
_TAG = re.compile(r"^:\n?(?P<tag>[0-9]{2}[A-Z]?|NS):", re.MULTILINE)
# Amounts in :60a:/:62a:/:64:/:65: balances and :61: entries. SWIFT's decimal mark is ",",
# which never appears as a thousands separator in these fields; legacy exports (Rabobank's
# pre-SEPA layout) write "." instead, which `mt-940` reads as the end of the amount.
_BALANCE_AMOUNT = re.compile(r"^(:6[0245][FM]?:[CD]\d{6}[A-Z]{3}\d+)\.(\d*)(?=\s|$)", re.MULTILINE)
_ENTRY_AMOUNT = re.compile(r"^(:61:\d{6}(?:\d{4})?R?[CD][A-Z]?\d+)\.(\d*)(?=[A-Z])", re.MULTILINE)
_SUM = re.compile(r"(?P<count>\d+)(?P<currency>[A-Z]{3})(?P<amount>\d[\d,]*)")
_BALANCE = re.compile(r"(?P<mark>[CD])(?P<date>\d{6})(?P<currency>[A-Z]{3})(?P<amount>\d[\d,]*)")
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


class _StatementNumber(mt940.tags.StatementNumber):
    """:28C: as banks write it: `mt-940` wants 5n[/5n]; Zenith Bank (NG) writes " /1",
    with no statement number before the sequence number."""

    pattern = r"""\s*
    (?P<statement_number>\d{0,5})  # 5n, sometimes left out
    (?:/?(?P<sequence_number>\d{1,5}))?  # [/5n]
    \s*$"""


class TagRefused(ValueError):
    """A tag's value that `mt-940` would take but then fail on: an amount its pattern matched
    that is not a number ("1,2,3", ",", ""), a :90: without its D or C."""

    def __init__(self, tag: str, value: str, problem: str) -> None:
        self.tag, self.value, self.problem = tag, value, problem
        super().__init__(f"{tag} {problem}")

    def refusal(self, path: str, text: str) -> ImportFailed:
        line = line_of(text, self.value)
        tag = (_tag_at(text, line) if line else None) or self.tag
        return ImportFailed(path, f"line {line}" if line else "", f"{tag} {self.problem}")


def _amount(text: str, tag: str, value: str) -> Decimal:
    try:
        return parse_decimal(text, decimal_separator=",")
    except ValueError as exc:
        raise TagRefused(
            tag,
            value,
            f"amount: {exc}; an amount is written like 1250,00 (digits and one decimal comma). "
            "Ask the bank for a corrected file",
        ) from None


def _amount_checked(tag: Any) -> Any:
    """`tag` refusing an amount its pattern matched but Decimal cannot read, as it refuses
    a value its pattern does not match: `mt-940` would raise decimal.InvalidOperation."""
    base = type(tag)

    def parse(self: Any, transactions: Any, value: str) -> dict[str, Any]:
        found: dict[str, Any] = base.parse(self, transactions, value)
        if found.get("amount") is not None:
            _amount(found["amount"], f":{self.id}:", value)
        return found

    # The class name stays `mt-940`'s: error messages name the tag by it.
    return type(base.__name__, (base,), {"parse": parse})()


class _SumWithoutSide(mt940.tags.SumEntries):
    """:90: alone: `mt-940` parses it and then fails for want of the D or C it has no tag for."""

    def parse(self, transactions: Any, value: str) -> dict[str, Any]:
        raise TagRefused(":90:", value, "must be :90D: (debit entries) or :90C: (credit entries)")


# Every tag with an amount, checked; keyed as `mt-940` keys its own.
_CHECKED_TAGS: dict[Any, Any] = {
    **{
        key: _amount_checked(tag)
        for key, tag in mt940.tags.TAG_BY_ID.items()
        if "(?P<amount>" in tag.pattern
    },
    90: _SumWithoutSide(),
}


def _transactions(text: str) -> Any:
    # Keyed by the full tag, as `mt-940` looks tags up: "28C" first, then "28".
    tags: dict[Any, Any] = {**_CHECKED_TAGS, "28C": _StatementNumber(), "28": _StatementNumber()}
    if _ASN_BANK_HEADER.search(text):
        asn = _amount_checked(mt940.tags.StatementASNB())
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


def repair(text: str) -> str:
    """The file with "." decimal marks in balances and entries written as SWIFT's ","."""
    return _ENTRY_AMOUNT.sub(r"\1,\2", _BALANCE_AMOUNT.sub(r"\1,\2", text))


def parse_mt(path: str, text: str, account: str | None = None) -> list[BankEntry]:
    if not _ANY_TAG.search(text):
        raise ImportFailed(path, "line 1", "no SWIFT MT940/MT942 tag (such as :20: or :61:) found")
    text = repair(text)
    transactions = _transactions(text)
    try:
        transactions.parse(text)
    except TagRefused as exc:
        raise exc.refusal(path, text) from None
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
    tag = re.search(r"\.(\w+) object", message)
    tag_id = (
        getattr(getattr(mt940.tags, tag.group(1).lstrip("_"), None), "id", None) if tag else None
    )
    # The tag as the file writes it (":28C:", not the ":28:" `mt-940` files it under).
    written = _tag_at(text, line) if line else None
    label = written or (f":{tag_id}:" if tag_id else None)
    kind = tag.group(1).lstrip("_") if tag else ""
    what = f"cannot parse {label} ({kind})" if label else "cannot parse"
    return ImportFailed(path, f"line {line}" if line else "", f"{what}: {fragment.strip()!r}")


def _tag_at(text: str, line: int) -> str | None:
    """The tag whose value runs through `line` (1-based): the last one starting at or
    before it."""
    offset = 0
    for _ in range(line - 1):
        offset = text.find("\n", offset) + 1
    end = text.find("\n", offset)
    found = None
    for found_tag in _TAG.finditer(text, 0, end if end >= 0 else len(text)):
        found = found_tag
    return f":{found['tag']}:" if found else None


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


def _balance(value: str) -> Balance | None:
    found = _BALANCE.match(value.strip())
    if not found:
        return None
    amount = _amount(found["amount"], "balance", value)
    return Balance(-amount if found["mark"] == "D" else amount, found["currency"])


def declared_statements(text: str) -> list[DeclaredStatement]:
    """Each statement (from one :20: to the next) as the file's own tags declare it: its
    :61: lines counted and its first :60F:/:60M: and last :62F:/:62M: read here, not by
    `mt-940`, so that a layout it misreads cannot also mislead the check."""
    text = repair(text)
    statements: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    line, last = 1, 0
    for found in _TAG.finditer(text):
        line += text.count("\n", last, found.start())
        last = found.start()
        tag = found["tag"]
        end = text.find("\n:", found.end())
        value = text[found.end() : end if end >= 0 else len(text)].strip()
        if current is None or tag == "20":
            current = {"line": line, "records": 0}
            statements.append(current)
        if tag in ("20", "25"):
            current.setdefault(tag, value.splitlines()[0].strip() if value else "")
        elif tag in ("28", "28C"):
            current.setdefault("28", value.strip())
        elif tag in ("60F", "60M") and "opening" not in current:
            current["opening"] = _balance(value)
            current["opening_tag"] = f"opening balance (:{tag}:)"
        elif tag in ("62F", "62M"):
            current["closing"] = _balance(value)
            current["closing_tag"] = f"closing balance (:{tag}:)"
        elif tag == "61":
            current["records"] += 1
        elif tag in ("90D", "90C") and (found_sum := _SUM.match(value.strip())):
            current.setdefault("sums", []).append(
                DeclaredSum(
                    f":{tag}:",
                    tag == "90D",
                    int(found_sum["count"]),
                    _amount(found_sum["amount"], f":{tag}:", value),
                    found_sum["currency"],
                )
            )
    return [_declared(s) for s in statements]


def _declared(s: dict[str, Any]) -> DeclaredStatement:
    parts = [
        f"account {s['25']}" if s.get("25") else "",
        f"number {s['28']}" if s.get("28") else "",
    ]
    details = ", ".join(p for p in parts if p)
    name = f"statement {s.get('20') or '(no :20:)'}" + (f" ({details})" if details else "")
    return DeclaredStatement(
        where=f"line {s['line']}",
        name=name,
        records=s["records"],
        opening=s.get("opening"),
        closing=s.get("closing"),
        opening_tag=s.get("opening_tag", "opening balance (:60F:)"),
        closing_tag=s.get("closing_tag", "closing balance (:62F:)"),
        sums=tuple(s.get("sums", ())),
    )


def parsed_statements(path: str, text: str, entries: list[BankEntry]) -> list[ParsedStatement]:
    """The parsed entries shared out to the declared statements in file order, once their
    total count is that of the :61: lines (else ImportFailed: the layout was misread)."""
    try:
        declared = declared_statements(text)
    except TagRefused as exc:
        raise exc.refusal(path, repair(text)) from None
    count_mismatch(path, "entries (:61: lines)", sum(d.records for d in declared), len(entries))
    out, start = [], 0
    for d in declared:
        mine = entries[start : start + d.records]
        start += d.records
        total = sum((e.amount for e in mine), Decimal(0))
        currencies = frozenset(e.currency for e in mine)
        amounts = tuple(e.amount for e in mine)
        out.append(ParsedStatement(d, len(mine), total, currencies, amounts))
    return out
