"""BAI2 cash-management files through the `bai2` package, with two documented repairs.

`bai2` 0.15 trips on two things real exports do (see moov-io/bai2's test files):
- several records on one physical line, padded to a fixed block length
  (`...,2/   02,...`): split them at "/ <record code>," before parsing;
- an 03 record continued by 88 records where the 03 ends exactly on a summary's type code:
  `bai2` then glues that code to the continuation's first field ("190" + "500000"). BAI2
  ends a record's last field with "/", so the repair joins 03 + 88 with a comma here;
- a 16 record's free text wrapped onto a physical line of its own, without an 88 prefix:
  a line that does not start with a record code continues the one before it;
- a 16 record with funds type S (0/1/2+-day availability) leaving an amount blank, which
  the spec reads as zero and `bai2` cannot: the blank is written as 0.
Control totals in account trailers are not enforced: real exports carry record counts and
totals that do not add up (moov-io's own samples do), and moov-io does not check them.
Sign from the type code: 100-399 credits, 400-699 debits; 16 records with other codes
(status, 900-999 custom) are rejected rather than guessed.
"""

from __future__ import annotations

import re
from typing import Any

from bai2 import bai2 as bai2_lib
from bai2.constants import TypeCodeTransaction

from services.importers.errors import ImportFailed
from services.importers.events import BankEntry
from services.importers.money import minor_units

_GLUED_RECORDS = re.compile(r"/[ \t]+(?=(?:01|02|03|16|49|88|98|99),)")
_RECORD_START = re.compile(r"^\d\d[,:]")
_SIMPLE_AVAILABILITY = re.compile(r"^(16,[^,]*,[^,]*,S),([^,/]*),([^,/]*),([^,/]*)")


def _zero_blank_availability(record: str) -> str:
    return _SIMPLE_AVAILABILITY.sub(
        lambda m: ",".join([m[1], *(v or "0" for v in (m[2], m[3], m[4]))]), record
    )


def _repair(text: str) -> list[str]:
    lines = [line.strip() for line in _GLUED_RECORDS.sub("/\n", text).splitlines() if line.strip()]
    out: list[str] = []
    for line in lines:
        if out and not _RECORD_START.match(line):
            out[-1] = out[-1] + " " + line
        elif line.startswith("88") and out and out[-1].startswith("03"):
            previous = out[-1].removesuffix("/")
            out[-1] = previous + "," + line[3:]
        else:
            out.append(line)
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


def parse_bai2(path: str, text: str, account: str | None = None) -> list[BankEntry]:
    lines = _repair(text)
    if not lines or not lines[0].startswith("01,"):
        raise ImportFailed(path, "line 1", "a BAI2 file starts with an 01 file header record")
    try:
        document = bai2_lib.parse_from_lines(lines, check_integrity=False)
    except Exception as exc:  # the library raises bare ValueErrors and its own types
        raise _located(path, text, exc) from None
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
