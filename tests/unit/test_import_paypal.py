"""PayPal Settlement Report (STL) to payouts: one per section and currency, signed from the
CR/DR columns, record counts checked, withdrawals to the bank not taken for items."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import events as ev
from services.cli.main import main
from services.importers import ImportFailed, parse_psp

STL = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "psp"
    / "paypal_settlement_STL-20261102.01.009.CSV"
)


def _payouts(path: Path) -> dict[str, ev.PayoutReportedData]:
    events = parse_psp(path, "paypal").events
    return {e.data.payout_id: e.data for e in events if isinstance(e, ev.PayoutReported)}


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    text = STL.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "STL.CSV"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_each_currency_of_a_section_is_one_payout_with_gross_fee_and_net() -> None:
    payouts = _payouts(STL)
    assert sorted(payouts) == [
        "paypal-Q7WLDXH5JRM2E-20261102-EUR",
        "paypal-Q7WLDXH5JRM2E-20261102-USD",
    ]
    usd = payouts["paypal-Q7WLDXH5JRM2E-20261102-USD"]
    assert (usd.provider, usd.currency, usd.payout_date) == ("paypal", "USD", date(2026, 11, 2))
    assert (usd.gross_amount, usd.fee_amount, usd.net_amount) == (
        Decimal("123.90"),
        Decimal("25.70"),
        Decimal("98.20"),
    )
    assert sum(i.gross - i.fee for i in usd.items) == usd.net_amount
    eur = payouts["paypal-Q7WLDXH5JRM2E-20261102-EUR"]
    assert (eur.gross_amount, eur.fee_amount, eur.net_amount) == (
        Decimal("80.00"),
        Decimal("3.07"),
        Decimal("76.93"),
    )


def test_event_codes_give_kinds_and_a_refund_names_the_payment_it_takes_back() -> None:
    usd = _payouts(STL)["paypal-Q7WLDXH5JRM2E-20261102-USD"]
    assert [(i.kind, i.payment_id, i.order_id, i.gross, i.fee) for i in usd.items] == [
        ("charge", "8MC58422Y2117064K", "ORD-5001", Decimal("129.90"), Decimal("4.07")),
        ("charge", "3HD08833MR4736230", "ORD-5002", Decimal("59.00"), Decimal("2.01")),
        ("refund", "3HD08833MR4736230", "ORD-5002", Decimal("-20.00"), Decimal("-0.38")),
        ("chargeback", "9LB01237HU4410722", "ORD-0999", Decimal("-45.00"), Decimal("20.00")),
    ]


def test_withdrawal_to_the_bank_is_not_an_item_and_is_listed_as_skipped() -> None:
    batch = parse_psp(STL, "paypal")
    assert [(s.where, s.reason.split(":")[0]) for s in batch.skipped] == [
        ("line 9", "T0400 withdrawal of 98.20 USD to the bank")
    ]


def test_column_names_with_single_or_double_spaces_read_the_same(tmp_path: Path) -> None:
    single = _edited(tmp_path, "Transaction  Debit or Credit", "Transaction Debit or Credit")
    assert _payouts(single) == _payouts(STL)


def test_section_count_that_disagrees_with_its_rows_names_line_and_field(tmp_path: Path) -> None:
    path = _edited(tmp_path, '"SC",6', '"SC",7')
    with pytest.raises(
        ImportFailed, match=r"STL\.CSV: line 13, field record count: the section says 7 SB rows"
    ):
        parse_psp(path, "paypal")


def test_report_without_its_record_count_is_refused_as_incomplete(tmp_path: Path) -> None:
    path = _edited(tmp_path, '"RC",6\n', "")
    with pytest.raises(
        ImportFailed, match=r"STL\.CSV: line \d+, field record type: no RC row .* cut short"
    ):
        parse_psp(path, "paypal")


def test_column_header_without_a_needed_column_names_it(tmp_path: Path) -> None:
    path = _edited(tmp_path, '"Fee Amount",', '"Fee",')
    with pytest.raises(
        ImportFailed, match=r"STL\.CSV: line 4, field Fee Amount: not in the column header"
    ):
        parse_psp(path, "paypal")


def test_direction_other_than_cr_or_dr_names_the_field(tmp_path: Path) -> None:
    path = _edited(tmp_path, '"CR",12990,"USD"', '"XX",12990,"USD"')
    with pytest.raises(
        ImportFailed,
        match=r"line 5, field Transaction Debit or Credit: 'XX' is neither CR nor DR",
    ):
        parse_psp(path, "paypal")


def test_amount_in_hundredths_must_fit_the_currency(tmp_path: Path) -> None:
    # 10000 is 100 JPY; 15050 would be 150.50 JPY, which has no such minor unit.
    path = _edited(tmp_path, '"CR",8000,"EUR","DR",307,"EUR"', '"CR",15050,"JPY","DR",0,"JPY"')
    with pytest.raises(
        ImportFailed,
        match=r"line 10, field Gross Transaction Amount: 150.50 has \d decimals but JPY allows 0",
    ):
        parse_psp(path, "paypal")


def test_zero_decimal_currency_is_in_hundredths_too(tmp_path: Path) -> None:
    path = _edited(tmp_path, '"CR",8000,"EUR","DR",307,"EUR"', '"CR",15000,"JPY","DR",400,"JPY"')
    jpy = _payouts(path)["paypal-Q7WLDXH5JRM2E-20261102-JPY"]
    assert (jpy.gross_amount, jpy.fee_amount, jpy.net_amount) == (
        Decimal("150"),
        Decimal("4"),
        Decimal("146"),
    )


def test_signed_or_decimal_amount_is_refused_naming_the_field(tmp_path: Path) -> None:
    path = _edited(tmp_path, '"CR",12990,"USD"', '"CR",129.90,"USD"')
    with pytest.raises(ImportFailed, match=r"line 5, field Gross Transaction Amount: '129.90'"):
        parse_psp(path, "paypal")


def test_utf16_report_of_older_versions_is_read(tmp_path: Path) -> None:
    path = tmp_path / "STL.CSV"
    path.write_bytes(STL.read_text(encoding="utf-8").encode("utf-16"))
    assert _payouts(path) == _payouts(STL)


def test_transaction_detail_report_is_refused_naming_it(tmp_path: Path) -> None:
    path = _edited(tmp_path, '"Custom Field",', '"Transactional Status","Custom Field",')
    with pytest.raises(
        ImportFailed,
        match=r"line 4, column Transactional Status: this is a PayPal Transaction Detail Report "
        r"\(TRR\).*Settlement Report \(STL",
    ):
        parse_psp(path, "paypal")


def test_activity_download_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "Download.CSV"
    path.write_text(
        '"Date","Time","TimeZone","Name","Type","Status","Currency","Gross","Fee","Net"\n'
        '"02/11/2026","08:14:36","PST","Ann","Express Checkout Payment","Completed","USD",'
        '"129.90","-4.07","125.83"\n'
    )
    with pytest.raises(ImportFailed, match=r"line 1, column TimeZone: this is a PayPal activity"):
        parse_psp(path, "paypal")


def test_cli_dry_run_imports_the_sample_and_a_bad_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "psp", str(STL), "--provider", "paypal", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "USD             1      4  123.90  25.70  98.20" in out.out
    assert "paypal, 2 payouts" in out.err
    broken = _edited(tmp_path, '"SC",6', '"SC",5')
    assert main(["import", "psp", str(broken), "--provider", "paypal", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "STL.CSV: line 13, field record count" in err
    assert "nothing published" not in err


def test_each_section_is_its_own_settlement_batch(tmp_path: Path) -> None:
    text = STL.read_text(encoding="utf-8")
    body = text[text.index('"SH"') : text.index('"RF"')]
    second = body.replace("Q7WLDXH5JRM2E", "K2PXE4T8WQZ6A")
    path = tmp_path / "STL.CSV"
    path.write_text(text.replace(body, body + second).replace('"RC",6', '"RC",12'))
    assert sorted(_payouts(path)) == [
        "paypal-K2PXE4T8WQZ6A-20261102-EUR",
        "paypal-K2PXE4T8WQZ6A-20261102-USD",
        "paypal-Q7WLDXH5JRM2E-20261102-EUR",
        "paypal-Q7WLDXH5JRM2E-20261102-USD",
    ]


_HEADER = STL.read_text(encoding="utf-8").splitlines()[:4]
_ROW = st.tuples(
    st.sampled_from(["T0006", "T1107", "T1201", "T0400", "T0108", "T1106"]),
    st.sampled_from(["CR", "DR"]),
    st.integers(min_value=0, max_value=10**9),
    st.sampled_from(["CR", "DR"]),
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["USD", "EUR", "JPY"]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_ROW, min_size=1, max_size=25))
def test_every_sb_row_is_an_item_or_a_listed_withdrawal_and_the_amounts_add_up(
    tmp_path: Path, rows: list[tuple[str, str, int, str, int, str]]
) -> None:
    lines = list(_HEADER)
    signed = Decimal(0)
    for n, (code, direction, gross, fee_direction, fee, currency) in enumerate(rows):
        if currency == "JPY":  # hundredths of a currency without minor units: whole yen
            gross, fee = gross - gross % 100, fee - fee % 100
        lines.append(
            f'"SB","TX{n:015d}","ORD-{n}","","","{code}",2026/11/02 08:00:00 -0800,'
            f'2026/11/02 08:00:00 -0800,"{direction}",{gross},"{currency}",'
            f'"{fee_direction}",{fee},"{currency}","","","","","","","",""'
        )
        if not code.startswith("T04"):
            g = Decimal(gross) / 100 * (1 if direction == "CR" else -1)
            f = Decimal(fee) / 100 * (-1 if fee_direction == "CR" else 1)
            signed += g - f
    lines += [f'"SC",{len(rows)}', f'"RC",{len(rows)}']
    path = tmp_path / "STL.CSV"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    batch = parse_psp(path, "paypal")
    payouts = [e.data for e in batch.events if isinstance(e, ev.PayoutReported)]
    items = sum(len(p.items) for p in payouts)
    assert items + len(batch.skipped) == len(rows)
    assert len(batch.skipped) == sum(1 for r in rows if r[0].startswith("T04"))
    assert sum(p.net_amount for p in payouts) == signed
    for payout in payouts:
        assert payout.gross_amount - payout.fee_amount == payout.net_amount
