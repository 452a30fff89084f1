"""Any bank's CSV export, described by a small TOML mapping file.

Example mapping (every key but `columns.booking_date` and one amount form is optional):

    [csv]
    delimiter = ";"            # default ","
    encoding = "utf-8"         # e.g. "gbk", "cp1252"
    skip_lines = 0             # preface lines before the header row
    date_format = "%d.%m.%Y"   # strptime format; default ISO "%Y-%m-%d"
    decimal_separator = ","    # default "."
    thousands_separator = "."  # default none

    [account]
    id = "DE89370400440532013000"  # or columns.account_id; --account overrides both
    currency = "EUR"               # when there is no currency column

    [columns]                  # header names in the file
    booking_date = "Buchungstag"
    value_date = "Valuta"
    amount = "Betrag"          # signed; or credit = "Haben" and debit = "Soll"
    # direction = "S/H" with credit_marks = ["H"] makes an unsigned amount signed
    currency = "Waehrung"
    counterparty_name = "Auftraggeber"
    counterparty_account = "IBAN"
    remittance_info = ["Verwendungszweck", "Zusatz"]   # several columns are joined
    end_to_end_id = "EREF"
    bank_reference = "Referenz"
"""

from __future__ import annotations

import codecs
import csv
import io
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, overload

from services.importers.errors import ImportFailed
from services.importers.events import BankEntry
from services.importers.money import fit_currency, parse_decimal
from services.importers.text import csv_records

_TEXT_FIELDS = (
    "counterparty_name",
    "counterparty_account",
    "remittance_info",
    "end_to_end_id",
    "bank_reference",
)
_KNOWN_COLUMNS = {
    "booking_date",
    "value_date",
    "amount",
    "credit",
    "debit",
    "direction",
    "currency",
    "account_id",
    *_TEXT_FIELDS,
}


@dataclass(frozen=True)
class Mapping:
    columns: dict[str, tuple[str, ...]]
    delimiter: str = ","
    encoding: str = "utf-8-sig"
    skip_lines: int = 0
    date_format: str = "%Y-%m-%d"
    decimal_separator: str = "."
    thousands_separator: str = ""
    account_id: str | None = None
    currency: str | None = None
    credit_marks: tuple[str, ...] = field(default=("C", "CR", "CRDT", "H", "+"))


def load_mapping(path: str | Path) -> Mapping:
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImportFailed(path, "", "no such mapping file") from None
    except UnicodeDecodeError as exc:
        raise ImportFailed(path, "", f"not UTF-8 text, as TOML is: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ImportFailed(path, "", f"not valid TOML: {exc}") from None
    columns_raw = raw.get("columns")
    if not isinstance(columns_raw, dict):
        raise ImportFailed(path, "[columns]", "missing: name the file's columns there")
    unknown = sorted(set(columns_raw) - _KNOWN_COLUMNS - {"credit_marks"})
    if unknown:
        raise ImportFailed(
            path, "[columns]", f"unknown keys {unknown}; known: {sorted(_KNOWN_COLUMNS)}"
        )
    columns: dict[str, tuple[str, ...]] = {}
    for key, value in columns_raw.items():
        if key == "credit_marks":
            continue
        names = _names(value)
        if not names:
            raise ImportFailed(path, f"columns.{key}", "must be a column name or a list of them")
        columns[key] = names
    if "booking_date" not in columns:
        raise ImportFailed(path, "columns.booking_date", "required")
    if "amount" not in columns and not ("credit" in columns and "debit" in columns):
        raise ImportFailed(path, "[columns]", "needs `amount`, or both `credit` and `debit`")
    settings, account = _table(path, raw, "csv"), _table(path, raw, "account")
    marks = columns_raw.get("credit_marks")
    if marks is not None and not _names(marks):
        raise ImportFailed(path, "columns.credit_marks", 'must be a list of marks such as ["H"]')
    delimiter = _text(path, settings, "csv.delimiter", ",")
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise ImportFailed(
            path, "csv.delimiter", f"must be one character such as ';', not {delimiter!r}"
        )
    encoding = _text(path, settings, "csv.encoding", "utf-8-sig")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ImportFailed(
            path, "csv.encoding", f"unknown encoding {encoding!r}; e.g. utf-8, gbk, cp1252"
        ) from None
    skip_lines = settings.get("skip_lines", 0)
    if not isinstance(skip_lines, int) or isinstance(skip_lines, bool) or skip_lines < 0:
        raise ImportFailed(
            path, "csv.skip_lines", f"must be a whole number ≥ 0, not {skip_lines!r}"
        )
    return Mapping(
        columns=columns,
        delimiter=delimiter,
        encoding=encoding,
        skip_lines=skip_lines,
        date_format=_text(path, settings, "csv.date_format", "%Y-%m-%d"),
        decimal_separator=_text(path, settings, "csv.decimal_separator", "."),
        thousands_separator=_text(path, settings, "csv.thousands_separator", ""),
        account_id=_text(path, account, "account.id", None),
        currency=_text(path, account, "account.currency", None),
        credit_marks=_names(marks) if marks else Mapping.credit_marks,
    )


def _names(value: object) -> tuple[str, ...]:
    """A column name or a list of them as a tuple; () if that is not what `value` is."""
    names = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else ()
    return names if all(isinstance(n, str) and n for n in names) else ()


def _table(path: str | Path, raw: dict[str, Any], name: str) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ImportFailed(path, f"[{name}]", "must be a table of settings, such as [csv]")
    return table


@overload
def _text(path: str | Path, table: dict[str, Any], key: str, default: str) -> str: ...
@overload
def _text(path: str | Path, table: dict[str, Any], key: str, default: None) -> str | None: ...
def _text(path: str | Path, table: dict[str, Any], key: str, default: str | None) -> str | None:
    value = table.get(key.split(".", 1)[1], default)
    if value is not None and not isinstance(value, str):
        raise ImportFailed(path, key, f"must be a quoted string, not {value!r}")
    return value


def parse_csv(
    path: str, raw: bytes, mapping: Mapping, account: str | None = None
) -> list[BankEntry]:
    try:
        text = raw.decode(mapping.encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportFailed(path, f"line {line}", f"not {mapping.encoding}: {exc.reason}") from None
    lines = text.splitlines(keepends=True)[mapping.skip_lines :]
    # newline="": csv itself then reads "\r", "\n" and "\r\n" as line ends, as it must.
    reader = csv.DictReader(io.StringIO("".join(lines), newline=""), delimiter=mapping.delimiter)
    header_line = mapping.skip_lines + 1
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        raise ImportFailed(path, f"line {header_line}", f"not readable as CSV: {exc}") from None
    missing = sorted(
        {n for names in mapping.columns.values() for n in names} - {h.strip() for h in header}
    )
    if missing:
        raise ImportFailed(path, f"line {header_line}", f"header lacks columns {missing}")
    entries = []
    for row in csv_records(path, reader, header_line, lines=reader.reader):
        line = header_line + reader.line_num - 1
        cells = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(cells.values()):
            continue
        entries.append(_entry(path, f"line {line}", cells, mapping, account))
    return entries


def _cell(cells: dict[str, str], mapping: Mapping, key: str) -> str | None:
    names = mapping.columns.get(key, ())
    values = [cells.get(n, "") for n in names]
    joined = " ".join(v for v in values if v)
    return joined or None


def _entry(
    path: str, where: str, cells: dict[str, str], mapping: Mapping, account: str | None
) -> BankEntry:
    def fail(key: str, problem: str) -> ImportFailed:
        column = ", ".join(mapping.columns.get(key, (key,)))
        return ImportFailed(path, f"{where}, column {column}", problem)

    account_id = account or _cell(cells, mapping, "account_id") or mapping.account_id
    if not account_id:
        raise ImportFailed(
            path, where, "no account: map columns.account_id, set [account] id or pass --account"
        )
    currency = _cell(cells, mapping, "currency") or mapping.currency
    if not currency:
        raise fail("currency", "no currency: map columns.currency or set [account] currency")
    amount = _amount(cells, mapping, fail)
    try:
        amount = fit_currency(amount, currency.upper())
    except ValueError as exc:
        raise fail("amount", str(exc)) from None
    booking = _date(
        _cell(cells, mapping, "booking_date"), mapping, lambda p: fail("booking_date", p)
    )
    if booking is None:
        raise fail("booking_date", "empty")
    value_text = _cell(cells, mapping, "value_date")
    value = _date(value_text, mapping, lambda p: fail("value_date", p)) if value_text else None
    texts = {key: _cell(cells, mapping, key) for key in _TEXT_FIELDS}
    return BankEntry(
        account_id=account_id,
        booking_date=booking,
        value_date=value,
        amount=amount,
        currency=currency.upper(),
        where=where,
        **texts,
    )


def _number(text: str | None, mapping: Mapping) -> Decimal | None:
    if not text:
        return None
    return parse_decimal(text, mapping.decimal_separator, mapping.thousands_separator)


def _amount(cells: dict[str, str], mapping: Mapping, fail: Any) -> Decimal:
    try:
        if "amount" in mapping.columns:
            value = _number(_cell(cells, mapping, "amount"), mapping)
            if value is None:
                raise fail("amount", "empty")
            direction = _cell(cells, mapping, "direction")
            if direction is not None:
                credit = direction.strip().upper() in {m.upper() for m in mapping.credit_marks}
                value = abs(value) if credit else -abs(value)
            return value
        credit_value = _number(_cell(cells, mapping, "credit"), mapping)
        debit_value = _number(_cell(cells, mapping, "debit"), mapping)
    except ValueError as exc:
        raise fail("amount", str(exc)) from None
    if credit_value is None and debit_value is None:
        raise fail("credit", "neither credit nor debit has an amount")
    return abs(credit_value or Decimal(0)) - abs(debit_value or Decimal(0))


def _date(text: str | None, mapping: Mapping, fail: Any) -> date | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, mapping.date_format).date()  # noqa: DTZ007 - a date
    except ValueError:
        raise fail(f"{text!r} does not match date format {mapping.date_format!r}") from None
