"""`o2c import … --dry-run`, mapped CSV statements and format detection, without a broker."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from schemas import events as ev
from services.cli.main import main
from services.importers import ImportFailed, detect_format, parse_bank
from services.importers.publishing import murmur2

PSP = Path(__file__).resolve().parents[1] / "data" / "psp"

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

MAPPING = """
[csv]
delimiter = ";"
date_format = "%d.%m.%Y"
decimal_separator = ","
thousands_separator = "."

[account]
id = "DE89370400440532013000"
currency = "EUR"

[columns]
booking_date = "Buchungstag"
value_date = "Valuta"
amount = "Betrag"
counterparty_name = "Auftraggeber"
remittance_info = ["Verwendungszweck", "Zusatz"]
"""

CSV = """Buchungstag;Valuta;Auftraggeber;Verwendungszweck;Zusatz;Betrag
01.11.2026;01.11.2026;Ann GmbH;INV-7;ORD-1001;1.250,00
02.11.2026;02.11.2026;Bo Ltd;Fees;;-3,50
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_dry_run_prints_totals_per_currency_and_publishes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "s.sta", STATEMENT)
    # No broker runs in unit tests: a publish attempt would fail, not pass silently.
    assert main(["import", "bank", str(path), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "currency  entries  credits  debits     net  from        to",
        "--------  -------  -------  ------  ------  ----------  ----------",
        "EUR             2   250.00   40.50  209.50  2026-11-01  2026-11-02",
    ]
    assert "mt940, 2 bank lines" in err
    assert "dry run: nothing published" in err


def test_psp_dry_run_prints_payouts_items_and_net(capsys: pytest.CaptureFixture[str]) -> None:
    path = PSP / "stripe_payout_reconciliation_itemized.csv"
    assert main(["import", "psp", str(path), "--provider", "stripe", "--dry-run"]) == 0
    out, _err = capsys.readouterr()
    assert out.splitlines()[2].split() == [
        "USD", "2", "5", "323.90", "27.18", "296.72", "2026-11-03", "2026-11-04"
    ]  # fmt: skip


def test_invalid_file_exits_non_zero_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "bad.sta", STATEMENT.replace("D40,50NTRF", "D40,505NTRF"))
    assert main(["import", "bank", str(path), "--dry-run"]) == 2
    _out, err = capsys.readouterr()
    assert f"o2c: {path}: line 7:" in err
    assert "40.505 has 3 decimals but EUR allows 2" in err


def test_csv_statement_is_read_through_its_mapping(tmp_path: Path) -> None:
    mapping = _write(tmp_path, "bank.toml", MAPPING)
    statement = _write(tmp_path, "export.csv", CSV)
    batch = parse_bank(statement, mapping=mapping)
    lines = [e.data for e in batch.events if isinstance(e, ev.BankLineBooked)]
    assert [(str(x.booking_date), x.amount, x.remittance_info) for x in lines] == [
        ("2026-11-01", Decimal("1250.00"), "INV-7 ORD-1001"),
        ("2026-11-02", Decimal("-3.50"), "Fees"),
    ]
    assert lines[0].account_id == "DE89370400440532013000"
    assert lines[0].counterparty_name == "Ann GmbH"


def test_csv_row_with_a_bad_date_names_line_and_column(tmp_path: Path) -> None:
    mapping = _write(tmp_path, "bank.toml", MAPPING)
    statement = _write(tmp_path, "export.csv", CSV.replace("02.11.2026;02", "2026-11-02;02"))
    with pytest.raises(
        ImportFailed, match=r"export\.csv: line 3, column Buchungstag: '2026-11-02'"
    ):
        parse_bank(statement, mapping=mapping)


def test_same_content_twice_in_a_statement_gets_two_ids_and_same_ids_on_reimport(
    tmp_path: Path,
) -> None:
    twice = STATEMENT.replace(
        ":62F:C261102EUR1209,50",
        ":61:2611021102D40,50NTRFNONREF\n:86:Card fees\n:62F:C261102EUR1169,00",
    )
    path = _write(tmp_path, "s.sta", twice)
    first = [e.id for e in parse_bank(path).events]
    assert len(first) == 3 == len(set(first))
    assert first == [e.id for e in parse_bank(path).events]


def test_overlapping_statements_give_the_same_ids_for_the_same_bookings(tmp_path: Path) -> None:
    # Tuesday's statement repeats Monday's booking: its event id is the one already imported.
    monday = _write(
        tmp_path,
        "mon.sta",
        STATEMENT.replace(":61:2611021102D40,50NTRFNONREF\n:86:Card fees\n", "").replace(
            "EUR1209,50", "EUR1250,00"
        ),
    )
    ids_monday = {e.id for e in parse_bank(monday).events}
    ids_both = {e.id for e in parse_bank(_write(tmp_path, "tue.sta", STATEMENT)).events}
    assert ids_monday < ids_both


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b":20:X\n:25:1\n:61:...", "mt940"),
        (b"{1:F01ASNBNL21XXXX0000000000}{4:\n:20:0\n", "mt940"),
        (b":20:X\n:34F:EURD0,\n:13D:2611011200+0100\n", "mt942"),
        (b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">',
         "camt053"),
        (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.054.001.08'>", "camt054"),
        (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.052.001.01'>", "camt052"),
        (b"01,0004,12345,060321,0829,001,80,1,2/\n", "bai2"),
    ],
)  # fmt: skip
def test_format_is_detected_from_content(head: bytes, expected: str) -> None:
    assert detect_format("f", head) == expected


def test_unknown_content_asks_for_format_and_names_the_file() -> None:
    with pytest.raises(ImportFailed, match=r"^statement\.txt: line 1: cannot tell the format"):
        detect_format("statement.txt", b"Date,Amount\n2026-11-01,5.00\n")


@pytest.mark.parametrize(
    ("key", "signed_hash"),
    [
        ("21", -973932308),
        ("foobar", -790332482),
        ("a-little-bit-long-string", -985981536),
        ("a-little-bit-longer-string", -1486304829),
        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        ("abc", 479470107),
    ],
)
def test_murmur2_matches_the_java_clients_test_vectors(key: str, signed_hash: int) -> None:
    # The importer reads only the partitions of the file's keys: they must be the ones the
    # producer's murmur2 partitioner chose (Kafka's UtilsTest vectors, as signed ints).
    assert murmur2(key.encode()) == signed_hash & 0xFFFFFFFF


def test_unparsable_mt940_line_is_named_with_its_tag(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.sta", STATEMENT.replace(":61:2611011101C", ":61:26110XX101C"))
    with pytest.raises(ImportFailed, match=r"s\.sta: line 5: cannot parse :61: \(Statement\)"):
        parse_bank(path)


def test_malformed_camt_names_the_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "c.xml",
        '<?xml version="1.0"?>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">\n'
        "<BkToCstmrStmt><Stmt>\n</BkToCstmrStmt>\n",
    )
    with pytest.raises(ImportFailed, match=r"c\.xml: line 4: not well-formed XML"):
        parse_bank(path)


def test_camt_entry_with_a_bad_indicator_names_its_element(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "c.xml",
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
        "<Stmt><Id>S1</Id><Acct><Id><IBAN>CH9300762011623852957</IBAN></Id></Acct>"
        "<Ntry><Amt Ccy='CHF'>5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>"
        "<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-11-02</Dt></BookgDt></Ntry>"
        "<Ntry><Amt Ccy='CHF'>7.00</Amt><CdtDbtInd>CREDIT</CdtDbtInd></Ntry>"
        "</Stmt></BkToCstmrStmt></Document>",
    )
    with pytest.raises(
        ImportFailed, match=r"element BkToCstmrStmt/Stmt\[1\]/Ntry\[2\]/CdtDbtInd: must be"
    ):
        parse_bank(path)


def test_csv_with_separate_credit_and_debit_columns(tmp_path: Path) -> None:
    mapping = _write(
        tmp_path,
        "m.toml",
        '[account]\nid = "ACC-1"\ncurrency = "CNY"\n'
        '[columns]\nbooking_date = "日期"\ncredit = "收入"\ndebit = "支出"\n'
        'remittance_info = "摘要"\n',
    )
    statement = _write(
        tmp_path,
        "s.csv",
        "日期,收入,支出,摘要\n2026-11-01,100.00,,ORD-1\n2026-11-01,,8.80,手续费\n",
    )
    lines = [
        e.data
        for e in parse_bank(statement, mapping=mapping).events
        if isinstance(e, ev.BankLineBooked)
    ]
    assert [(x.amount, x.remittance_info) for x in lines] == [
        (Decimal("100.00"), "ORD-1"),
        (Decimal("-8.80"), "手续费"),
    ]


BAI2 = """01,0004,12345,060321,0829,001,80,1,2/
02,12345,0004,1,060317,,CAD,/
03,10200123456,CAD,040,+000000000000,,,045,+000000000000,,/
16,409,000000000002500,V,060316,,,,RETURNED CHEQUE     /
16,108,000000000203500,V,060316,,,,TFR 1020 0345678    /
49,+00000000000206000,4/
98,+00000000000206000,1,6/
99,+00000000000206000,1,8/
"""


def test_bai2_lines_are_signed_by_type_code_and_dated_by_the_group(tmp_path: Path) -> None:
    batch = parse_bank(_write(tmp_path, "b.txt", BAI2))
    lines = [e.data for e in batch.events if isinstance(e, ev.BankLineBooked)]
    assert [(x.amount, x.currency, str(x.booking_date)) for x in lines] == [
        (Decimal("-25.00"), "CAD", "2006-03-17"),
        (Decimal("2035.00"), "CAD", "2006-03-17"),
    ]


def test_bai2_value_the_library_rejects_is_located_on_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "b.txt", BAI2.replace("108,000000000203500", "108,0000000002035X0"))
    with pytest.raises(ImportFailed, match=r"b\.txt: line 5: not a valid BAI2 file: invalid"):
        parse_bank(path)
