"""Bank statements of every supported format, to `BankLineBooked` events."""

from __future__ import annotations

import re
from pathlib import Path

from services.importers import swift_mt
from services.importers.bai2_format import import_bai2
from services.importers.batch import ImportBatch, Skipped, with_card_numbers_masked
from services.importers.camt import import_camt
from services.importers.csv_mapping import load_mapping, parse_csv
from services.importers.errors import ImportFailed
from services.importers.events import BankEntry, InvalidEntry, bank_line_events
from services.importers.statement_check import ParsedStatement, check_statements, count_mismatch
from services.importers.swift_mt import decode as decode_mt
from services.importers.swift_mt import parse_mt
from services.importers.text import decode_statement, read_bytes

BANK_FORMATS = ("mt940", "mt942", "camt052", "camt053", "camt054", "bai2", "csv")

_CAMT_NAMESPACE = re.compile(rb"camt\.(05[234])\.001")
_CAMT_ROOT = {b"BkToCstmrStmt": "camt053", b"BkToCstmrAcctRpt": "camt052"}


def detect_format(path: str | Path, raw: bytes) -> str:
    """The format of a statement from its content (not its name); ImportFailed if unknown."""
    head = raw[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        found = _CAMT_NAMESPACE.search(head)
        if found:
            return f"camt{found.group(1).decode()}"
        for root, name in _CAMT_ROOT.items():
            if root in head:
                return name
        if b"BkToCstmrDbtCdtNtfctn" in head:
            return "camt054"
        raise ImportFailed(path, "line 1", "XML, but not an ISO 20022 camt.052/053/054 message")
    if re.match(rb"\d\d,", head):
        return "bai2"
    if re.search(rb"^(?::[0-9]{2}[A-Z]?:|\{1:F01|:NS:)", head, re.MULTILINE):
        return "mt942" if re.search(rb"^:34F:|^:13D:", raw, re.MULTILINE) else "mt940"
    raise ImportFailed(
        path,
        "line 1",
        "cannot tell the format (not MT940/MT942, camt XML or BAI2); "
        "pass --format, and for CSV --mapping",
    )


def parse_bank(
    path: str | Path,
    format: str | None = None,
    mapping: str | Path | None = None,
    account: str | None = None,
    balance_check: bool = True,
) -> ImportBatch:
    """Parse and validate a whole statement file, and check it against itself (see
    `statement_check`); ImportFailed names the file and where. Without `balance_check` the
    balances and control totals are not compared; the entry count always is."""
    name = str(path)
    raw = read_bytes(path)
    if format is None:
        format = "csv" if mapping is not None else detect_format(name, raw)
    if format not in BANK_FORMATS:
        raise ImportFailed(name, "", f"unknown format {format!r}; known: {', '.join(BANK_FORMATS)}")
    skipped: list[Skipped] = []
    entries: list[BankEntry]
    statements: list[ParsedStatement] = []
    checks: list[str] = []
    if format in ("mt940", "mt942"):
        text = decode_mt(raw)
        entries = parse_mt(name, text, account)
        statements = swift_mt.parsed_statements(name, text, entries)
    elif format.startswith("camt"):
        entries, skipped, statements = import_camt(name, raw, account)
    elif format == "bai2":
        text = decode_statement(raw)
        entries, statements, checks = import_bai2(name, text, account, totals=balance_check)
    else:
        if mapping is None:
            raise ImportFailed(name, "", "a CSV statement needs --mapping FILE (see README)")
        entries = parse_csv(name, raw, load_mapping(mapping), account)
        checks = ["balance check does not apply: a CSV export carries no balances"]
    if statements and balance_check:
        checks += check_statements(name, statements)
    elif statements:
        checks += [f"balance check skipped (--no-balance-check); {_counted(name, statements)}"]
    try:
        events = bank_line_events(entries, source=f"o2c-import/{format}")
    except InvalidEntry as exc:
        raise ImportFailed(name, exc.where, f"invalid bank line: {exc.problem}") from None
    return with_card_numbers_masked(
        ImportBatch(name, format, tuple(e for e, _ in events), tuple(skipped), checks=tuple(checks))
    )


def _counted(path: str, statements: list[ParsedStatement]) -> str:
    for s in statements:
        d = s.declared
        count_mismatch(path, f"entries in {d.name}", d.records, s.entries, d.where)
    n = len(statements)
    return f"entry count checked in {n} statement{'s' * (n != 1)}"
