"""BAI2 cash-management files through the `bai2` package, with two documented repairs.

`bai2` 0.15 trips on things real exports do (see moov-io/bai2's test files):
- several records on one physical line, padded to a fixed block length
  (`...,2/   02,...`): split them at "/ <record code>," before parsing;
- an 03 record continued by 88 records: `bai2` guesses from the comma count whether a
  row's "/" ended a field, and glues "190/" + "88,500000" into "190500000". Here the rows are
  joined into one record field by field, as the spec reads them (a new row starts a new
  field), and an empty field a bank writes before "/" (",/", as Silicon Valley Bank does)
  is dropped only where it would stand in a type code's place;
- a 16 record's free text wrapped onto a physical line of its own, without an 88 prefix:
  a line that does not start with a record code continues the one before it;
- a 16 record with funds type S (0/1/2+-day availability) leaving an amount blank, which
  the spec reads as zero and `bai2` cannot: the blank is written as 0.
The file is then checked against itself (see `declared_controls`): the 16 records counted in
the text must all be parsed, and the account (49), group (98) and file (99) trailers' control
totals and record counts must be those of the records they close.
Sign from the type code: 100-399 credits, 400-699 debits; 16 records with other codes
(status, 900-999 custom) are rejected rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bai2 import bai2 as bai2_lib
from bai2.constants import TypeCodeTransaction
from bai2.exceptions import IntegrityException, NotSupportedYetException, ParsingException

from schemas.money import CURRENCY_DECIMALS
from services.importers.errors import ImportFailed
from services.importers.events import BankEntry
from services.importers.money import minor_units
from services.importers.statement_check import (
    SKIP_HINT,
    Balance,
    DeclaredStatement,
    ParsedStatement,
    count_mismatch,
    money,
)

_GLUED_RECORDS = re.compile(r"/[ \t]+(?=(?:01|02|03|16|49|88|98|99),)")
_RECORD_START = re.compile(r"^\d\d[,:]")
_SIMPLE_AVAILABILITY = re.compile(r"^(16,[^,]*,[^,]*,S),([^,/]*),([^,/]*),([^,/]*)")


def _zero_blank_availability(record: str) -> str:
    return _SIMPLE_AVAILABILITY.sub(
        lambda m: ",".join([m[1], *(v or "0" for v in (m[2], m[3], m[4]))]), record
    )


def _physical_records(text: str) -> list[tuple[int, str]]:
    """(line number, record) of every record, glued ones split, wrapped text rejoined."""
    out: list[tuple[int, str]] = []
    for n, physical in enumerate(text.splitlines(), 1):
        for line in _GLUED_RECORDS.sub("/\n", physical).splitlines():
            line = line.strip()
            if not line:
                continue
            if out and not _RECORD_START.match(line):
                out[-1] = (out[-1][0], out[-1][1] + " " + line)
            else:
                out.append((n, line))
    return out


def _groups_complete(fields: list[str]) -> bool:
    """Whether summary fields (type code, amount, item count, funds type and the funds
    type's availability fields) end exactly after a whole summary."""
    at = 0
    while at < len(fields):
        if at + 4 > len(fields):
            return False
        funds = fields[at + 3]
        extra = {"S": 3, "V": 2}.get(funds, 0)
        if funds == "D":
            try:
                extra = 1 + 2 * int(fields[at + 4])
            except (IndexError, ValueError):
                return False
        at += 4 + extra
    return at == len(fields)


def _account_identifier(rows: list[str]) -> str:
    fields: list[str] = []
    for row in rows:
        body = row[3:].strip()
        fields.extend(body.removesuffix("/").split(","))
        if body.endswith(",/") and _groups_complete(fields[2:-1]):
            fields.pop()
    return "03," + ",".join(fields) + "/"


def _repair(text: str) -> list[str]:
    out: list[str] = []
    rows: list[str] = []  # an 03 record and its 88 continuations
    for _line, record in _physical_records(text):
        if rows and record.startswith("88"):
            rows.append(record)
            continue
        if rows:
            out.append(_account_identifier(rows))
            rows = []
        if record.startswith("03"):
            rows = [record]
        else:
            out.append(record)
    if rows:
        out.append(_account_identifier(rows))
    return [_zero_blank_availability(r) for r in out]


_DETAIL_START = re.compile(r"(?:^|/[ \t]+)16,", re.MULTILINE)


def _detail_lines(text: str) -> list[int]:
    """The physical line of each 16 record in order, in one pass over the text."""
    numbers, line, last = [], 1, 0
    for found in _DETAIL_START.finditer(text):
        line += text.count("\n", last, found.start())
        last = found.start()
        numbers.append(line)
    return numbers


# What `bai2` raises on a file it cannot read: its own types, ValueError from int() and its
# enums, IndexError from a record with too few fields. Named, not `Exception`, so that a
# bug (or an interrupt) is not reported as a fault of the file.
_LIBRARY_REFUSALS = (
    ParsingException,
    NotSupportedYetException,
    IntegrityException,
    ValueError,
    IndexError,
)


def _document(path: str, text: str) -> Any:
    lines = _repair(text)
    if not lines or not lines[0].startswith("01,"):
        raise ImportFailed(path, "line 1", "a BAI2 file starts with an 01 file header record")
    if not lines[-1].startswith("99,"):
        # Checked here because `bai2` never returns from a file that ends inside a group or
        # an account: at the end of its input it parses the last record again, forever.
        last = len(text.rstrip().splitlines())
        raise ImportFailed(
            path,
            f"line {last}",
            "the file ends without its 99 file trailer record, so it was cut short; "
            "nothing was imported: ask the bank for the complete file",
        )
    try:
        # Integrity is checked by `check_controls`, which can say where and by how much.
        return bai2_lib.parse_from_lines(lines, check_integrity=False)
    except _LIBRARY_REFUSALS as exc:
        raise _located(path, text, exc) from None


def parse_bai2(path: str, text: str, account: str | None = None) -> list[BankEntry]:
    return entries_of(path, text, _document(path, text), account)


def import_bai2(
    path: str, text: str, account: str | None, totals: bool
) -> tuple[list[BankEntry], list[ParsedStatement], list[str]]:
    """The entries, each account as a statement for the balance check, and the notes of the
    trailer checks (`check_controls`), from one parse of the file."""
    document = _document(path, text)
    entries = entries_of(path, text, document, account)
    file = _sections(text)
    checks = check_controls(path, document, file, entries, totals)
    return entries, ledger_statements(document, file, entries), checks


def entries_of(path: str, text: str, document: Any, account: str | None) -> list[BankEntry]:
    entries: list[BankEntry] = []
    lines_of_details = iter(_detail_lines(text))
    for group in document.children:
        as_of = group.header.as_of_date
        for acct in group.children:
            # BAI2: a blank account currency is the group's; a blank group currency is USD.
            currency = acct.header.currency or group.header.currency or "USD"
            account_id = account or acct.header.customer_account_number
            for detail in acct.children:
                line = next(lines_of_details, None)
                where = f"line {line}" if line else f"16 record {len(entries) + 1}"
                entries.append(_entry(path, where, detail, account_id, currency, as_of))
    return entries


def _located(path: str, text: str, exc: Exception) -> ImportFailed:
    message = str(exc) or type(exc).__name__
    code = re.search(r"'(\d{2})' is not a valid RecordCode", message)
    if code:
        for n, text_line in enumerate(text.splitlines(), 1):
            if text_line.strip()[:2] == code.group(1):
                return ImportFailed(path, f"line {n}", f"unknown BAI2 record code {code.group(1)}")
    found = _line_of_field(text, message)
    return ImportFailed(path, f"line {found}" if found else "", f"not a valid BAI2 file: {message}")


# Which records a `bai2` complaint about a value can be about.
_HINTS = {"GroupStatus": ("02",), "Type code": ("16", "03", "88"), "FundsType": ("16", "03", "88")}


def _line_of_field(text: str, message: str) -> int | None:
    """The line holding the value `bai2` quotes in its message: the library says what was
    wrong but not where. It parses in order and stops at the first bad record, so that is
    the first record (of the kinds the complaint can be about) with the value as a field."""
    quoted = re.search(r"'([^']+)'", message)
    if not quoted:
        return None
    token = quoted.group(1)
    found = [
        (n, line.strip()[:2])
        for n, line in enumerate(text.splitlines(), 1)
        if token in re.split(r"[,/]", line.strip())
    ]
    hinted = next((codes for hint, codes in _HINTS.items() if hint in message), None)
    if hinted:
        found = [(n, code) for n, code in found if code in hinted]
    return found[0][0] if found else None


def _entry(
    path: str, where: str, detail: Any, account_id: str, currency: str, as_of: Any
) -> BankEntry:
    # `bai2` leaves a blank field None: say so here rather than fail on it below.
    if detail.type_code is None:
        raise ImportFailed(path, where, "transaction detail (16) without a type code")
    if as_of is None:
        raise ImportFailed(
            path, where, "its group header (02) has no as-of date, so no booking date"
        )
    kind = detail.type_code.transaction
    if kind is TypeCodeTransaction.credit:
        sign = 1
    elif kind is TypeCodeTransaction.debit:
        sign = -1
    else:
        raise ImportFailed(
            path, where, f"type code {detail.type_code.code} is neither a credit nor a debit"
        )
    if detail.amount is None:
        raise ImportFailed(path, where, "transaction detail without amount")
    try:
        amount = minor_units(sign * int(detail.amount), currency)
    except (ValueError, KeyError) as exc:
        raise ImportFailed(path, where, str(exc)) from None
    availability = detail.availability or {}
    value_date = availability.get("date") if isinstance(availability, dict) else None
    return BankEntry(
        account_id=account_id,
        booking_date=as_of,
        value_date=value_date,
        amount=amount,
        currency=currency,
        remittance_info=(detail.text or "").strip() or None,
        end_to_end_id=(detail.customer_reference or "").strip() or None,
        bank_reference=(detail.bank_reference or "").strip() or None,
        where=where,
    )


@dataclass
class _Section:
    """An account (03…49), group (02…98) or the file (01…99) as its records stand."""

    line: int
    records: int = 0
    details: int = 0
    trailer_line: int | None = None
    children: list[_Section] = field(default_factory=list)


def _sections(text: str) -> _Section:
    """The file's structure with records counted from the text itself, 88s included."""
    file = _Section(line=1)
    group: _Section | None = None
    account: _Section | None = None
    for line, record in _physical_records(text):
        code = record[:2]
        if code == "02":
            group = _Section(line)
            file.children.append(group)
        elif code == "03" and group is not None:
            account = _Section(line)
            group.children.append(account)
        for open_section in (file, group, account):
            if open_section is not None:
                open_section.records += 1
        if code == "16" and account is not None:
            account.details += 1
        elif code == "49" and account is not None:
            account.trailer_line, account = line, None
        elif code == "98" and group is not None:
            group.trailer_line, group = line, None
        elif code == "99":
            file.trailer_line = line
    return file


def ledger_statements(
    document: Any, file: _Section, entries: list[BankEntry]
) -> list[ParsedStatement]:
    """Each account as a statement: opening ledger (summary 010) + its entries = closing
    ledger (015), where the 03 record carries both (Silicon Valley Bank's do); the parsed
    entries are shared out in file order by the 16 records counted in the text (after
    `check_controls` has made sure their structure is the parsed one)."""
    out, start = [], 0
    for g, (raw_group, group) in enumerate(zip(file.children, document.children, strict=True), 1):
        for raw, acct in zip(raw_group.children, group.children, strict=True):
            currency = acct.header.currency or group.header.currency or "USD"
            ledger = {
                item.type_code.code: item.amount
                for item in acct.header.summary_items
                if item.type_code is not None and item.amount is not None
            }

            def balance(
                code: str, currency: str = currency, ledger: dict[str, int] = ledger
            ) -> Balance | None:
                if code not in ledger:
                    return None
                return Balance(minor_units(ledger[code], currency), currency)

            mine = entries[start : start + raw.details]
            start += raw.details
            declared = DeclaredStatement(
                where=f"line {raw.line}",
                name=f"account {acct.header.customer_account_number} (group {g}, as of "
                f"{group.header.as_of_date})",
                records=raw.details,
                opening=balance("010"),
                closing=balance("015"),
                opening_tag="opening ledger (010)",
                closing_tag="closing ledger (015)",
            )
            total = sum((e.amount for e in mine), Decimal(0))
            out.append(
                ParsedStatement(declared, len(mine), total, frozenset(e.currency for e in mine))
            )
    return out


def check_controls(
    path: str, document: Any, file: _Section, entries: list[BankEntry], totals: bool
) -> list[str]:
    """ImportFailed unless every 16 record in the text was parsed and, with `totals`, each
    trailer's control total and record count are those of the records it closes. BAI2's
    control totals add every amount as written (03 summaries and 16 details, unsigned by
    type code), so they catch a lost, added or misread amount, not a wrong sign."""
    accounts = [a for g in file.children for a in g.children]
    count_mismatch(
        path, "transaction details (16 records)", sum(a.details for a in accounts), len(entries)
    )
    count_mismatch(path, "groups (02 records)", len(file.children), len(document.children))
    for raw_group, group in zip(file.children, document.children, strict=True):
        count_mismatch(
            path,
            "accounts (03 records) in this group",
            len(raw_group.children),
            len(group.children),
            f"line {raw_group.line}",
        )
    parsed = [a for g in document.children for a in g.children]
    for raw, acct in zip(accounts, parsed, strict=True):
        count_mismatch(
            path,
            f"16 records for account {acct.header.customer_account_number}",
            raw.details,
            len(acct.children),
            f"line {raw.line}",
        )
    if not totals:
        return ["control totals and record counts not checked (--no-balance-check)"]
    group_totals = []
    for g, (raw_group, group) in enumerate(zip(file.children, document.children, strict=True), 1):
        currency = group.header.currency or "USD"
        account_totals = []
        for raw, acct in zip(raw_group.children, group.children, strict=True):
            name = f"account {acct.header.customer_account_number} (group {g})"
            summed = sum(s.amount or 0 for s in acct.header.summary_items) + sum(
                d.amount or 0 for d in acct.children
            )
            _control(
                path,
                raw.trailer_line,
                f"{name}: account trailer (49)",
                summed,
                acct.trailer.account_control_total,
                acct.header.currency or currency,
            )
            _records(
                path,
                raw.trailer_line,
                f"{name}: account trailer (49)",
                raw.records,
                acct.trailer.number_of_records,
            )
            account_totals.append(acct.trailer.account_control_total)
        where = f"group {g}: group trailer (98)"
        _control(
            path,
            raw_group.trailer_line,
            where,
            sum(account_totals),
            group.trailer.group_control_total,
            currency,
            "the account trailers' totals",
        )
        _records(
            path, raw_group.trailer_line, where, raw_group.records, group.trailer.number_of_records
        )
        _records(
            path,
            raw_group.trailer_line,
            where,
            len(group.children),
            group.trailer.number_of_accounts,
            "accounts",
        )
        group_totals.append(group.trailer.group_control_total)
    _control(
        path,
        file.trailer_line,
        "file trailer (99)",
        sum(group_totals),
        document.trailer.file_control_total,
        None,
        "the group trailers' totals",
    )
    _records(
        path,
        file.trailer_line,
        "file trailer (99)",
        file.records,
        document.trailer.number_of_records,
    )
    _records(
        path,
        file.trailer_line,
        "file trailer (99)",
        len(file.children),
        document.trailer.number_of_groups,
        "groups",
    )
    return [
        f"control totals: {len(accounts)} account{'s' * (len(accounts) != 1)}, "
        f"{len(file.children)} group{'s' * (len(file.children) != 1)} and the file add up"
    ]


def _control(
    path: str,
    line: int | None,
    what: str,
    summed: int,
    declared: int | None,
    currency: str | None,
    of: str = "the amounts of its 03 (balances, summaries) and 16 (transactions) records",
) -> None:
    if declared is None or summed == declared:
        return
    places = -2 if currency is None else -CURRENCY_DECIMALS.get(currency, 2)

    def shown(units: int) -> str:
        return money(Decimal(units).scaleb(places), currency)

    raise ImportFailed(
        path,
        f"line {line}" if line else "",
        f"{what} does not add up: its control total is {shown(declared)} but "
        f"{of} add up to {shown(summed)} (difference {shown(declared - summed)}). {SKIP_HINT}",
    )


def _records(
    path: str,
    line: int | None,
    what: str,
    counted: int,
    declared: int | None,
    noun: str = "records",
) -> None:
    if declared is None or counted == declared:
        return
    raise ImportFailed(
        path,
        f"line {line}" if line else "",
        f"{what} declares {declared} {noun} but the file holds {counted} "
        f"(difference {counted - declared:+d}). {SKIP_HINT}",
    )
