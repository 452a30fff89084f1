"""PayPal Settlement Report (STL-yyyymmdd.NN.VVV.CSV), the CSV layout of PayPal's
"Settlement Report Specification".

Every row starts with its record type: RH report header, FH file header, SH section header
(one account and its reporting period: the settlement batch), CH the section's column
names, SB one transaction, SF and RF the section's and report's totals per currency, SC and
RC the number of SB rows in the section and in the report, FF file footer. Amounts are
unsigned whole hundredths (10000 is 100.00 USD, and 100 JPY), their direction in the
"Debit or Credit" column beside them: a credit to the merchant's balance is positive gross,
a fee debited is a positive fee, a fee credited back a negative one.

One payout per section and currency: "paypal-<account id>-<YYYYMMDD>-<currency>", dated by
the section's period (the day in the report's own offset). T04xx rows (withdrawals to the
bank) are the money leaving for the bank, not items, and are listed as skipped. The SC and
RC counts are checked; the SF and RF totals are not read.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from services.importers.batch import Skipped
from services.importers.errors import ImportFailed
from services.importers.money import fit_currency
from services.importers.psp.common import (
    Parsed,
    PayoutRow,
    Signature,
    decode_utf8_report,
    other_providers,
    refuse_other_report,
)
from services.importers.text import csv_records

TRANSACTION_ID = "Transaction ID"
INVOICE_ID = "Invoice ID"
REFERENCE_ID = "PayPal Reference ID"
REFERENCE_TYPE = "PayPal Reference ID Type"
EVENT_CODE = "Transaction Event Code"
COMPLETED = "Transaction Completion Date"
DIRECTION = "Transaction Debit or Credit"  # "Transaction  Debit or Credit" in real files
GROSS = "Gross Transaction Amount"
CURRENCY = "Gross Transaction Currency"
FEE_DIRECTION = "Fee Debit or Credit"
FEE = "Fee Amount"
FEE_CURRENCY = "Fee Currency"
REQUIRED = (
    TRANSACTION_ID,
    EVENT_CODE,
    COMPLETED,
    DIRECTION,
    GROSS,
    CURRENCY,
    FEE_DIRECTION,
    FEE,
    FEE_CURRENCY,
)
WITHDRAWAL = "T04"  # T0400 general withdrawal, T0401 auto-sweep, T0403 settlement …
_KINDS = {
    "T1107": "refund",  # payment refund, initiated by the merchant
    "T1106": "chargeback",  # payment reversal, initiated by PayPal
    "T1110": "chargeback",  # hold for dispute investigation
    "T1111": "chargeback",  # cancellation of that hold
}
_INSTEAD = "download the Settlement Report (STL-yyyymmdd…CSV) from the reports SFTP or site"
OTHER_REPORTS = (
    Signature(("Transactional Status",), "a PayPal Transaction Detail Report (TRR)", _INSTEAD),
    Signature(("Balance Impact",), "a PayPal activity download", _INSTEAD),
    Signature(("TimeZone", "Gross", "Fee", "Net"), "a PayPal activity download", _INSTEAD),
    *other_providers("paypal"),
)
READS = "the Settlement Report (STL) this importer reads"
_KNOWN = {"RH", "FH", "SH", "CH", "SB", "SF", "SC", "RF", "RC", "FF"}


@dataclass
class _Section:
    account: str
    day: date
    where: str
    header: list[str] = field(default_factory=list)
    count: int = 0


def parse_paypal(path: str, raw: bytes) -> Parsed:
    reader = csv.reader(io.StringIO(_decode(path, raw), newline=""))
    rows: list[PayoutRow] = []
    skipped: list[Skipped] = []
    section: _Section | None = None
    in_report = 0
    counted = False
    for record in csv_records(path, reader):
        where = f"line {reader.line_num}"
        cells = [c.strip() for c in record]
        if not any(cells):
            continue
        kind = cells[0]
        if reader.line_num == 1:
            refuse_other_report(path, where, cells, OTHER_REPORTS, READS)
        if kind not in _KNOWN:
            raise ImportFailed(
                path,
                f"{where}, field record type",
                f"unknown record type {kind!r} (RH, FH, SH, CH, SB, SF, SC, RF, RC or FF): "
                "is this a PayPal Settlement Report?",
            )
        if kind == "SH":
            section = _section(path, where, cells)
        elif kind == "CH":
            if section is None:
                raise ImportFailed(path, f"{where}, field record type", "CH before any SH")
            section.header = [" ".join(c.split()) for c in cells]
            refuse_other_report(path, where, section.header, OTHER_REPORTS, READS)
            missing = [c for c in REQUIRED if c not in section.header]
            if missing:
                raise ImportFailed(
                    path,
                    f"{where}, field {missing[0]}",
                    f"not in the column header (CH): {missing}",
                )
        elif kind == "SB":
            if section is None or not section.header:
                raise ImportFailed(path, f"{where}, field record type", "SB before its SH and CH")
            section.count += 1
            in_report += 1
            row = dict(zip(section.header, cells, strict=False))
            absent = [c for c in REQUIRED if c not in row]
            if absent:
                raise ImportFailed(
                    path,
                    f"{where}, field {absent[0]}",
                    f"the row ends after {len(cells)} fields, before {absent}: it was cut "
                    "short; import a complete report",
                )
            item = _item(path, where, section, row)
            if row[EVENT_CODE].startswith(WITHDRAWAL):
                skipped.append(
                    Skipped(
                        where,
                        f"{row[EVENT_CODE]} withdrawal of {-item.gross} {item.currency} to the "
                        "bank: the payout leaving PayPal, not an item of it",
                    )
                )
            else:
                rows.append(item)
        elif kind == "SC":
            if section is None:
                raise ImportFailed(path, f"{where}, field record type", "SC before any SH")
            _check_count(path, where, cells, section.count, "section")
        elif kind == "RC":
            _check_count(path, where, cells, in_report, "report")
            counted = True
    if not counted:
        raise ImportFailed(
            path,
            f"line {reader.line_num}, field record type",
            "no RC row (the report's record count): the report continues in another file "
            "(STL-….02…) or was cut short; import a complete report",
        )
    return Parsed(rows, {}, tuple(skipped))


def _decode(path: str, raw: bytes) -> str:
    # The specification says UTF-8 (with a BOM since 9.0.3); older reports were UTF-16.
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].decode("utf-16", "replace").count("\n") + 1
            raise ImportFailed(
                path, f"line {line}", "not UTF-16 text, as its byte order mark says"
            ) from None
    return decode_utf8_report(path, raw, OTHER_REPORTS, READS, "the STL report")


def _section(path: str, where: str, cells: list[str]) -> _Section:
    if len(cells) < 4 or not cells[3]:
        raise ImportFailed(path, f"{where}, field Account ID", "missing from the section header")
    end = _time(path, where, "Report Period End Date", cells[2])
    return _Section(cells[3], end.date(), where)


def _item(path: str, where: str, section: _Section, row: dict[str, str]) -> PayoutRow:
    currency = row[CURRENCY]
    if row[FEE] not in ("", "0") and row[FEE_CURRENCY] not in ("", currency):
        raise ImportFailed(
            path,
            f"{where}, field {FEE_CURRENCY}",
            f"fee in {row[FEE_CURRENCY]}, gross in {currency}",
        )
    gross = _amount(path, where, GROSS, row[GROSS], row[DIRECTION], currency, credit=1)
    fee = _amount(path, where, FEE, row[FEE], row[FEE_DIRECTION], currency, credit=-1)
    _time(path, where, COMPLETED, row[COMPLETED])
    code = row[EVENT_CODE]
    if not (len(code) == 5 and code[0] == "T" and code[1:].isdigit()):
        raise ImportFailed(path, f"{where}, field {EVENT_CODE}", f"not a T-code: {code!r}")
    transaction = row[TRANSACTION_ID]
    if not transaction:
        raise ImportFailed(path, f"{where}, field {TRANSACTION_ID}", "empty")
    kind = _KINDS.get(code) or ("chargeback" if code.startswith("T12") else None)
    if kind is None:
        kind = "charge" if code.startswith("T00") and gross > 0 else "adjustment"
    # A refund or reversal names the payment it takes back by its reference id.
    referenced = row.get(REFERENCE_ID, "") if row.get(REFERENCE_TYPE) == "TXN" else ""
    payment_id = referenced if kind != "charge" and referenced else transaction
    return PayoutRow(
        payout_id=f"paypal-{section.account}-{section.day:%Y%m%d}-{currency}",
        payout_date=section.day,
        currency=currency,
        payment_id=payment_id,
        order_id=row.get(INVOICE_ID) or None,
        kind=kind,
        gross=gross,
        fee=fee,
        where=where,
    )


def _amount(
    path: str, where: str, column: str, text: str, direction: str, currency: str, credit: int
) -> Decimal:
    """Unsigned hundredths and CR/DR as a signed Decimal; `credit` is the sign of a CR."""
    if not text:
        return Decimal(0)
    direction_column = DIRECTION if column == GROSS else FEE_DIRECTION
    if direction not in ("CR", "DR"):
        raise ImportFailed(
            path, f"{where}, field {direction_column}", f"{direction!r} is neither CR nor DR"
        )
    if not text.isdigit():
        raise ImportFailed(
            path, f"{where}, field {column}", f"{text!r} is not an unsigned amount in hundredths"
        )
    try:
        value = fit_currency(Decimal(text).scaleb(-2), currency)
    except ValueError as exc:
        raise ImportFailed(path, f"{where}, field {column}", str(exc)) from None
    return value * (credit if direction == "CR" else -credit)


def _time(path: str, where: str, column: str, text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y/%m/%d %H:%M:%S %z")
    except ValueError:
        raise ImportFailed(
            path, f"{where}, field {column}", f"not a time like 2026/11/02 09:14:36 -0800: {text!r}"
        ) from None


def _check_count(path: str, where: str, cells: list[str], counted: int, scope: str) -> None:
    stated = cells[1] if len(cells) > 1 else ""
    if not stated.isdigit():
        raise ImportFailed(path, f"{where}, field record count", f"not a count: {stated!r}")
    if int(stated) != counted:
        raise ImportFailed(
            path,
            f"{where}, field record count",
            f"the {scope} says {stated} SB rows but the file has {counted}",
        )
