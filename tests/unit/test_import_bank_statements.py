"""Every statement in ../shared/data/bank-statements against the parse its source ships.

Files are discovered, not listed: a statement added to the shared folder is tested too.
The few that do not add up (statement_expectations.UNBALANCED) are compared through
--no-balance-check; test_statement_balance_check.py asserts they are refused without it.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import parse as parse_xml

from schemas import events as ev
from schemas.money import CURRENCY_DECIMALS
from services.importers import ImportFailed, parse_bank
from services.importers.swift_mt import remittance_text
from tests.unit.statement_expectations import (
    STATEMENTS,
    balance_checked,
    load_mt940_expectation,
)

pytestmark = pytest.mark.skipif(
    not STATEMENTS.is_dir(),
    reason=f"shared test statements not found at {STATEMENTS} (CI clones ../shared beside)",
)


def _files(folder: str, *patterns: str) -> list[Path]:
    root = STATEMENTS / folder
    if not root.is_dir():
        return []
    return sorted(p for pattern in patterns for p in root.rglob(pattern))


def _id(path: Path) -> str:
    return str(path.relative_to(STATEMENTS))


MT940_FILES = [p for p in _files("mt940", "*.sta") if p.with_suffix(".yml").exists()]
CAMT_FILES = _files("camt", "*.xml")
BAI2_FILES = [p for p in _files("bai2", "*.txt") if "errors" not in p.parts]
BAI2_BROKEN = _files("bai2/errors", "*")


def _parse(path: Path, account: str | None = None) -> Any:
    return parse_bank(path, account=account, balance_check=balance_checked(path))


def _lines(batch_events: tuple[Any, ...]) -> list[ev.BankLineBookedData]:
    return [e.data for e in batch_events if isinstance(e, ev.BankLineBooked)]


def _reference(text: str | None) -> str | None:
    # As the importer stores text: stripped, at most the contract's 4000 characters.
    stripped = (text or "").strip()[:4000].strip()
    return stripped or None


# --- MT940 / MT942 ----------------------------------------------------------------------


@pytest.mark.parametrize("path", MT940_FILES, ids=_id)
def test_mt940_entries_agree_with_the_expected_parse(path: Path) -> None:
    expected = load_mt940_expectation(path.with_suffix(".yml"))
    text = path.read_text(encoding="utf-8", errors="replace")
    # Fragments of a statement (one tag, as in the cmxl and betterplace tag tests) carry no
    # :25: account; the user names it, as with `o2c import bank --account`.
    account = None if ":25:" in text else "TEST-ACCOUNT"
    withdrawn = {
        t["currency"] for t in expected["transactions"] if t["currency"] not in CURRENCY_DECIMALS
    }
    if not re.search(r"^(?::[0-9]{2}[A-Z]?:|:NS:)", text, re.MULTILINE):
        with pytest.raises(ImportFailed) as failure:
            parse_bank(path, account=account)
        assert str(path) in str(failure.value)
        assert expected["transactions"] == []
        return
    if withdrawn:
        # The contract takes current ISO 4217 codes only; a pre-euro DEM statement, or an
        # entry without any currency, fails the whole file, naming the file, line and code.
        with pytest.raises(ImportFailed) as failure:
            parse_bank(path, account=account)
        assert str(path) in str(failure.value)
        assert re.search(r"line \d+", str(failure.value))
        assert any((code or "no currency") in str(failure.value) for code in withdrawn)
        return
    lines = _lines(_parse(path, account).events)
    assert len(lines) == len(expected["transactions"])
    for line, want in zip(lines, expected["transactions"], strict=True):
        # SWIFT: RC is the reversal of a credit (a debit), RD of a debit (a credit). mt-940
        # keeps the sign of both as written, so for those the magnitude is compared.
        if want["status"] in ("RC", "RD"):
            assert line.amount == -want["amount"]["amount"]
        else:
            assert line.amount == want["amount"]["amount"]
        assert (line.amount < 0) == (want["status"] in ("D", "RC"))
        assert line.currency == want["currency"]
        assert line.booking_date == (want.get("entry_date") or want["date"])
        assert line.value_date == want["date"]
        assert line.remittance_info == _reference(remittance_text(want))


ASN_BANK = STATEMENTS / "mt940" / "ASNB" / "0708271685_09022020_164516.940.txt"


@pytest.mark.skipif(not ASN_BANK.exists(), reason="ASN Bank statement not in shared data")
def test_asn_bank_statement_parses_with_its_own_tag() -> None:
    # No .yml ships for it; these figures are the ones WoLpH/mt940's own test asserts.
    lines = _lines(parse_bank(ASN_BANK).events)
    assert [str(line.amount) for line in lines] == [
        "-65.00",
        "1000.00",
        "-801.55",
        "-1.65",
        "828.72",
        "-1000.00",
        "1000.18",
        "-903.76",
    ]
    assert {line.account_id for line in lines} == {"NL81ASNB9999999999"}
    assert lines[0].booking_date == date(2020, 1, 1)
    assert lines[0].end_to_end_id == "NL47INGB9999999999"
    assert lines[0].remittance_info is not None
    assert lines[0].remittance_info.startswith("NL47INGB9999999999 hr gjlm paulissen")


# --- camt.052 / 053 / 054 ---------------------------------------------------------------


def _root(path: Path) -> Element:
    root = parse_xml(str(path)).getroot()
    assert root is not None
    return root


def _record_ids(path: Path) -> list[str]:
    ids = []
    for node in _root(path).iter():
        if node.tag.rsplit("}", 1)[-1] in ("Stmt", "Rpt", "Ntfctn"):
            child = next((c for c in node if c.tag.rsplit("}", 1)[-1] == "Id"), None)
            ids.append((child.text or "").strip() if child is not None else "")
    return ids


def _ntry_count(path: Path) -> int:
    return len([n for n in _root(path).iter() if n.tag.endswith("Ntry")])


def _money(amount: dict[str, Any]) -> tuple[Decimal, str]:
    currency = amount["getCurrency"]["getCode"]
    minor = Decimal(amount["getAmount"])
    return minor.scaleb(-CURRENCY_DECIMALS[currency]), currency


@pytest.mark.parametrize("path", CAMT_FILES, ids=_id)
def test_camt_entries_agree_with_the_expected_parse(path: Path) -> None:
    expected_file = path.with_suffix(".json")
    if not expected_file.exists():
        # No expected parse: its source project rejects the file (camt053.v2.wrong.xml).
        with pytest.raises(ImportFailed) as failure:
            parse_bank(path)
        assert str(path) in str(failure.value)
        assert "element " in str(failure.value)
        return
    batch = _parse(path)
    lines = _lines(batch.events)
    assert len(lines) + len(batch.skipped) == _ntry_count(path)
    records = _record_ids(path)
    # genkgo's dump lists under getEntries the entries of one statement (the last, in
    # multi-statement files); each is found among ours by its statement and position.
    expected = json.loads(expected_file.read_text(encoding="utf-8"))["getEntries"]
    for want in expected:
        record = records.index(want["getRecord"]["getId"]) + 1
        where = f"{_record_name(path)}[{record}]/Ntry[{want['getIndex'] + 1}]"
        if want["getStatus"] != "BOOK":
            assert any(s.where.endswith(where) for s in batch.skipped)
            continue
        line = _line_at(batch, lines, where)
        amount, currency = _money(want["getAmount"])
        assert line.amount == amount
        assert (line.amount < 0) == (want["getCreditDebitIndicator"] == "DBIT")
        assert line.currency == currency
        booked = (want.get("getBookingDate") or {}).get("0")
        if booked:
            assert line.booking_date == date.fromisoformat(booked[:10])
        else:  # documented fallback: value date, else the statement's creation date
            assert line.booking_date in (line.value_date, *_creation_dates(path))
        for detail in want.get("getTransactionDetails") or []:
            info = detail.get("getRemittanceInformation") if isinstance(detail, dict) else None
            message = info.get("getMessage") if isinstance(info, dict) else None
            if message:
                assert line.remittance_info is not None
                assert message in line.remittance_info
        if want.get("getAccountServicerReference"):
            assert line.bank_reference == want["getAccountServicerReference"]


def _record_name(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    for message, record in (
        ("BkToCstmrStmt", "Stmt"),
        ("BkToCstmrAcctRpt", "Rpt"),
        ("BkToCstmrDbtCdtNtfctn", "Ntfctn"),
    ):
        if message in text:
            return f"{message}/{record}"
    raise AssertionError(f"{path}: no camt message")


def _line_at(batch: Any, lines: list[ev.BankLineBookedData], where: str) -> ev.BankLineBookedData:
    from services.importers.camt import parse_camt

    entries, _skipped = parse_camt(batch.path, Path(batch.path).read_bytes())
    (index,) = [n for n, e in enumerate(entries) if e.where.endswith(where)]
    return lines[index]


def _creation_dates(path: Path) -> list[date]:
    return [
        date.fromisoformat(d) for d in re.findall(r"<CreDtTm>(\d{4}-\d{2}-\d{2})", path.read_text())
    ]


# --- BAI2 -------------------------------------------------------------------------------

_DETAIL = re.compile(r"(?:^|/\s+)16,(\d{3}),(\d*),", re.MULTILINE)


@pytest.mark.parametrize("path", BAI2_FILES, ids=_id)
def test_bai2_entries_agree_with_the_files_own_detail_records(path: Path) -> None:
    # moov-io ships no expected parse; the 16 records themselves are the reference: every
    # one becomes a line, 1xx-3xx credits and 4xx-6xx debits, amounts in cents.
    text = path.read_text(encoding="utf-8")
    details = _DETAIL.findall(text)
    lines = _lines(_parse(path).events)
    assert len(lines) == len(details)
    for line, (code, cents) in zip(lines, details, strict=True):
        sign = 1 if 100 <= int(code) < 400 else -1
        assert line.amount == sign * Decimal(cents).scaleb(-2)
        assert line.currency in ("USD", "CAD")


@pytest.mark.parametrize("path", BAI2_BROKEN, ids=_id)
def test_broken_bai2_fails_naming_the_file_and_line(path: Path) -> None:
    with pytest.raises(ImportFailed) as failure:
        parse_bank(path)
    assert str(path) in str(failure.value)
    assert "line 1" in str(failure.value)


@pytest.mark.parametrize("path", [*MT940_FILES[:3], *CAMT_FILES[:3], *BAI2_FILES[:2]], ids=_id)
def test_importing_a_statement_twice_gives_identical_events(path: Path) -> None:
    account = None if path.suffix != ".sta" or ":25:" in path.read_text(errors="replace") else "X"
    try:
        first = _parse(path, account)
    except ImportFailed:
        pytest.skip("a file that fails has no events to compare")
    second = _parse(path, account)
    assert [e.model_dump_json() for e in first.events] == [
        e.model_dump_json() for e in second.events
    ]
    assert len({e.id for e in first.events}) == len(first.events)
