"""Every statement is checked against itself before anything of it is published."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from schemas import events as ev
from services.cli.main import main
from services.importers import ImportFailed, parse_bank, swift_mt
from tests.unit.statement_expectations import STATEMENTS, UNBALANCED

DATA = Path(__file__).resolve().parents[1] / "data" / "bank"
RABOBANK = DATA / "mt940" / "rabobank_legacy_39_statements.sta"
ZENITH = DATA / "mt940" / "zenith_statement_number_slash.sta"
SVB = DATA / "bai2" / "svb_us_example.bai2"
BAI2_BAD_TOTAL = DATA / "bai2" / "control_total_disagrees_with_entry.bai2"

STATEMENT = """:20:STMT-1
:25:NL91ABNA0417164300
:28C:7/1
:60F:C261101EUR1000,00
:61:2611011101C250,00NTRFORD-1001//B1
:86:Payment ORD-1001 Ann
:61:2611021102D40,50NTRFNONREF
:86:Card fees
:62F:C261102EUR1209,50
-
"""


def _amounts(path: Path, **kwargs: object) -> list[Decimal]:
    batch = parse_bank(path, **kwargs)  # type: ignore[arg-type]
    return [e.data.amount for e in batch.events if isinstance(e, ev.BankLineBooked)]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- shared statements that do not add up --------------------------------------------

shared = pytest.mark.skipif(not STATEMENTS.is_dir(), reason=f"no shared data at {STATEMENTS}")


@shared
def test_every_listed_unbalanced_statement_is_in_the_shared_data() -> None:
    assert [name for name in UNBALANCED if not (STATEMENTS / name).is_file()] == []


@shared
@pytest.mark.parametrize("name", sorted(UNBALANCED))
def test_shared_statement_that_does_not_add_up_is_refused_with_its_figures(name: str) -> None:
    where, figure = UNBALANCED[name]
    path = STATEMENTS / name
    with pytest.raises(ImportFailed) as failure:
        parse_bank(path, account="TEST-ACCOUNT" if path.suffix == ".sta" else None)
    message = str(failure.value)
    assert message.startswith(f"{path}: ")
    assert where in failure.value.where
    assert figure in message
    assert "does not add up" in message
    assert "--no-balance-check" in message


@shared
@pytest.mark.parametrize("name", sorted(UNBALANCED))
def test_shared_statement_that_does_not_add_up_imports_without_the_check(name: str) -> None:
    path = STATEMENTS / name
    batch = parse_bank(path, balance_check=False)
    assert batch.events
    assert any("not checked" in c or "skipped" in c for c in batch.checks)


# --- item 1: a layout the parser misreads cannot import partially ---------------------


def test_legacy_rabobank_export_imports_all_39_entries_and_adds_up() -> None:
    text = RABOBANK.read_text(encoding="utf-8")
    assert len(re.findall(r"^:61:", text, re.MULTILINE)) == 39
    assert "\n-" not in text
    assert re.search(r"^:61:\d{6}[CD]\d+\.\d\d", text, re.MULTILINE)
    balances = re.findall(r"^:6[02]F:([CD])\d{6}EUR([\d.]+)", text, re.MULTILINE)
    signed = [Decimal(v) * (1 if mark == "C" else -1) for mark, v in balances]
    opening, closing = signed[0], signed[-1]
    amounts = _amounts(RABOBANK)
    assert len(amounts) == 39
    assert opening + sum(amounts) == closing
    # Each entry keeps its own :86: lines: 39 + 13, not all 52 glued into one.
    batch = parse_bank(RABOBANK)
    texts = [e.data.remittance_info or "" for e in batch.events if isinstance(e, ev.BankLineBooked)]
    assert [t.count("BETALINGSKENM.") for t in texts] == [1] * 39
    assert sum(t.count("FACTUURNUMMER") for t in texts) == 13
    assert parse_bank(RABOBANK).checks == (
        "balance check: 39 statements add up (opening balance + entries = closing balance)",
    )


def test_a_parser_that_reads_fewer_entries_than_the_file_holds_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without the "." repair, mt-940 reads the 39 statements as one entry: what it did
    # before the check, silently.
    monkeypatch.setattr(swift_mt, "repair", lambda text: text)
    with pytest.raises(
        ImportFailed,
        match=r"holds 39 entries \(:61: lines\) but the parser read 1: .*nothing was imported",
    ):
        parse_bank(RABOBANK)
    with pytest.raises(ImportFailed, match="parser read 1"):
        parse_bank(RABOBANK, balance_check=False)


# --- refusals and --no-balance-check at the command line ------------------------------


def test_statement_that_does_not_add_up_exits_2_with_the_three_figures_and_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "s.sta", STATEMENT.replace("EUR1209,50", "EUR1290,50"))
    # No --dry-run and no broker: a publish attempt would fail differently.
    assert main(["import", "bank", str(path)]) == 2
    _out, err = capsys.readouterr()
    assert err.startswith(f"o2c: {path}: line 1: statement STMT-1 (account NL91ABNA0417164300,")
    assert (
        "does not add up: opening balance (:60F:) 1,000.00 EUR + entries 209.50 EUR = "
        "1,209.50 EUR, but closing balance (:62F:) is 1,290.50 EUR (difference 81.00 EUR)"
    ) in err


def test_no_balance_check_imports_and_the_summary_says_it_was_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "s.sta", STATEMENT.replace("EUR1209,50", "EUR1290,50"))
    assert main(["import", "bank", str(path), "--dry-run", "--no-balance-check"]) == 0
    _out, err = capsys.readouterr()
    assert "mt940, 2 bank lines" in err
    assert "balance check skipped (--no-balance-check); entry count checked" in err


def test_balanced_statement_summary_says_it_adds_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "bank", str(_write(tmp_path, "s.sta", STATEMENT)), "--dry-run"]) == 0
    assert "balance check: 1 statement adds up" in capsys.readouterr().err


def test_each_statement_of_a_file_is_checked_on_its_own(tmp_path: Path) -> None:
    # Two errors that cancel out over the file still leave each statement wrong.
    second = STATEMENT.replace("STMT-1", "STMT-2").replace("EUR1000,00", "EUR1209,50")
    second = second.replace("EUR1209,50\n-", "EUR1409,00\n-")
    first = STATEMENT.replace("EUR1209,50\n-", "EUR1210,50\n-")
    path = _write(tmp_path, "two.sta", first + second)
    with pytest.raises(ImportFailed, match=r"line 1: statement STMT-1 .*difference 1\.00 EUR"):
        parse_bank(path)


def test_mt942_without_balances_says_the_check_does_not_apply(tmp_path: Path) -> None:
    text = STATEMENT.replace(":60F:C261101EUR1000,00\n", ":34F:EURD0,\n:13D:2611021200+0100\n")
    text = text.replace(":62F:C261102EUR1209,50\n", "")
    batch = parse_bank(_write(tmp_path, "i.sta", text))
    assert len(batch.events) == 2
    assert batch.checks == (
        "balance check does not apply to statement STMT-1 (account NL91ABNA0417164300, "
        "number 7/1) (no opening or closing balance in the file); entries counted",
    )


def test_mt942_number_and_sum_of_debit_and_credit_entries_are_checked(tmp_path: Path) -> None:
    text = STATEMENT.replace(":60F:C261101EUR1000,00\n", ":34F:EURD0,\n:13D:2611021200+0100\n")
    text = text.replace(":62F:C261102EUR1209,50\n", ":90D:1EUR40,50\n:90C:1EUR250,00\n")
    batch = parse_bank(_write(tmp_path, "i.sta", text))
    assert batch.checks == ("entry totals: 2 numbers and sums of entries (:90D:/:90C:) agree",)
    wrong = text.replace(":90C:1EUR250,00", ":90C:2EUR260,00")
    with pytest.raises(ImportFailed) as failure:
        parse_bank(_write(tmp_path, "w.sta", wrong))
    assert failure.value.where == "line 1"
    assert (
        ":90C: declares 2 credit entries of 260.00 EUR, but the statement holds 1 of "
        "250.00 EUR (difference 10.00 EUR)"
    ) in failure.value.problem


CAMT = """<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<Stmt><Id>S1</Id><Acct><Id><IBAN>CH9300762011623852957</IBAN></Id></Acct>
<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="CHF">100.00</Amt>
<CdtDbtInd>DBIT</CdtDbtInd><Dt><Dt>2026-11-01</Dt></Dt></Bal>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="CHF">CLOSING</Amt>
<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-02</Dt></Dt></Bal>
<Ntry><Amt Ccy="CHF">505.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2026-11-02</Dt></BookgDt></Ntry>
<Ntry><Amt Ccy="CHF">5.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2026-11-02</Dt></BookgDt></Ntry>
<Ntry><Amt Ccy="CHF">70.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts>
<BookgDt><Dt>2026-11-02</Dt></BookgDt></Ntry>
</Stmt></BkToCstmrStmt></Document>
"""


def test_camt_statement_adds_up_from_a_debit_opening_balance_without_pending_entries(
    tmp_path: Path,
) -> None:
    batch = parse_bank(_write(tmp_path, "c.xml", CAMT.replace("CLOSING", "400.00")))
    assert len(batch.events) == 2
    assert len(batch.skipped) == 1
    assert batch.checks[0].startswith("balance check: 1 statement adds up")


def test_camt_statement_that_does_not_add_up_names_its_element_and_balance_codes(
    tmp_path: Path,
) -> None:
    with pytest.raises(ImportFailed) as failure:
        parse_bank(_write(tmp_path, "c.xml", CAMT.replace("CLOSING", "470.00")))
    assert failure.value.where == "element BkToCstmrStmt/Stmt[1]"
    assert (
        "Stmt S1 (account CH9300762011623852957) does not add up: opening balance (OPBD) "
        "-100.00 CHF + entries 500.00 CHF = 400.00 CHF, but closing balance (CLBD) is "
        "470.00 CHF (difference 70.00 CHF)"
    ) in failure.value.problem


def test_camt_report_without_balances_says_the_check_does_not_apply(tmp_path: Path) -> None:
    text = re.sub(r"<Bal>.*?</Bal>", "", CAMT, flags=re.DOTALL)
    batch = parse_bank(_write(tmp_path, "c.xml", text))
    assert len(batch.events) == 2
    assert "does not apply to Stmt S1" in batch.checks[0]
    assert "no opening or closing balance in the file" in batch.checks[0]


# --- item 2: Silicon Valley Bank BAI2 -------------------------------------------------


def test_svb_bai2_with_continued_03_records_imports_and_its_ledgers_add_up() -> None:
    batch = parse_bank(SVB)
    lines = [e.data for e in batch.events if isinstance(e, ev.BankLineBooked)]
    assert [(str(x.booking_date), x.amount, x.remittance_info) for x in lines] == [
        ("2022-02-01", Decimal("4901.96"), "SOME PAYMENT ACH OFFSET"),
        ("2022-02-02", Decimal("9058.00"), "SOME PAYMENT ACH OFFSET"),
    ]
    assert batch.checks == (
        "control totals: 2 accounts, 2 groups and the file add up",
        "balance check: 2 statements add up (opening balance + entries = closing balance)",
    )


# --- item 3: Zenith Bank MT940 --------------------------------------------------------


def test_zenith_statement_number_without_a_number_before_the_slash_is_accepted() -> None:
    assert _amounts(ZENITH) == [Decimal("250000.00"), Decimal("-1075.00")]


def test_unparsable_statement_number_is_named_by_the_tag_the_file_writes(tmp_path: Path) -> None:
    path = _write(tmp_path, "z.sta", ZENITH.read_text().replace(":28C: /1", ":28C:A/1"))
    with pytest.raises(ImportFailed, match=r"z\.sta: line 4: cannot parse :28C: .*'A/1'"):
        parse_bank(path)


# --- item 4: BAI2 control totals and record counts ------------------------------------


def test_bai2_account_total_that_disagrees_with_its_entry_is_refused() -> None:
    with pytest.raises(ImportFailed) as failure:
        parse_bank(BAI2_BAD_TOTAL)
    assert failure.value.where == "line 5"
    assert (
        "account 4001234567 (group 1): account trailer (49) does not add up: its control "
        "total is 2,300.00 USD but the amounts of its 03 (balances, summaries) and 16 "
        "(transactions) records add up to 2,500.00 USD (difference -200.00 USD)"
    ) in failure.value.problem
    assert _amounts(BAI2_BAD_TOTAL, balance_check=False) == [Decimal("250.00")]


BAI2 = BAI2_BAD_TOTAL.read_text().replace("49,230000,3/", "49,250000,3/")


@pytest.mark.parametrize(
    ("broken", "where", "problem"),
    [
        ("98,230000,1,5/", "line 6", "group 1: group trailer (98) does not add up"),
        ("98,250000,1,4/", "line 6", "(98) declares 4 records but the file holds 5"),
        ("98,250000,2,5/", "line 6", "declares 2 accounts but the file holds 1"),
        ("99,250000,1,8/", "line 7", "file trailer (99) declares 8 records but the file holds 7"),
        ("49,250000,4/", "line 5", "account trailer (49) declares 4 records but the file holds 3"),
        ("015,125000", "line 3", "closing ledger (015) is 1,200.00 USD (difference -50.00 USD)"),
    ],
)  # fmt: skip
def test_bai2_trailers_and_ledgers_must_agree_with_their_records(
    tmp_path: Path, broken: str, where: str, problem: str
) -> None:
    text = BAI2.replace("98,230000,1,5/", "98,250000,1,5/").replace("99,230000", "99,250000")
    assert parse_bank(_write(tmp_path, "ok.bai2", text)).events
    record = broken.split(",")[0]
    if record == "015":
        text = text.replace("015,125000,,/", "015,120000,,/").replace("250000", "245000")
    else:
        text = re.sub(rf"^{record},[^\n]*", broken, text, flags=re.MULTILINE)
    with pytest.raises(ImportFailed) as failure:
        parse_bank(_write(tmp_path, "b.bai2", text))
    assert failure.value.where == where
    assert problem in failure.value.problem
