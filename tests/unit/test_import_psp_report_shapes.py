"""PSP reports as users actually hand them in (issue 18): a Stripe report run in a non-UTC
time zone, Adyen batches that carry their balance instead of paying out, Alipay bills saved
as UTF-8, and files of another report type, which are refused naming what they are."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from schemas import events as ev
from services.cli.main import main
from services.importers import ImportFailed, parse_psp

PSP = Path(__file__).resolve().parents[1] / "data" / "psp"
STRIPE = PSP / "stripe_payout_reconciliation_itemized.csv"
STRIPE_CHICAGO = PSP / "stripe_payout_reconciliation_itemized_america_chicago.csv"
ADYEN_43 = PSP / "adyen_settlement_detail_report_batch_43.csv"
ADYEN_44 = PSP / "adyen_settlement_detail_report_batch_44.csv"
ALIPAY = PSP / "alipay_business_detail_20261101_20261102.csv"
WECHAT_FUND_FLOW = PSP / "wechat_pay_fund_flow_bill_20261101.csv"


def _payouts(path: Path, provider: str) -> list[ev.PayoutReportedData]:
    return [e.data for e in parse_psp(path, provider).events if isinstance(e, ev.PayoutReported)]


# --- Stripe: the payout date is the UTC day -------------------------------------------------


def test_stripe_report_run_in_america_chicago_is_dated_by_the_utc_column() -> None:
    # automatic_payout_effective_at says 2026-11-02 18:00 (Chicago); the payout is 11-03 UTC.
    (payout,) = _payouts(STRIPE_CHICAGO, "stripe")
    assert payout.payout_date == date(2026, 11, 3)
    assert (payout.gross_amount, payout.fee_amount, payout.net_amount) == (
        Decimal("125.00"),
        Decimal("4.23"),
        Decimal("120.77"),
    )


def _stripe_local_only(tmp_path: Path, effective: str) -> Path:
    """The Chicago sample without its _utc columns, the payout time replaced by `effective`."""
    lines = STRIPE_CHICAGO.read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if not name.endswith("_utc")]
    out = []
    for n, line in enumerate(lines):
        cells = line.split(",")
        if n:
            cells[header.index("automatic_payout_effective_at")] = effective
            cells[header.index("available_on")] = effective
        out.append(",".join(cells[i] for i in keep))
    path = tmp_path / "stripe.csv"
    path.write_text("\n".join(out) + "\n")
    return path


def test_stripe_local_time_with_its_offset_is_converted_to_the_utc_day(tmp_path: Path) -> None:
    path = _stripe_local_only(tmp_path, "2026-11-02 18:00:00-06:00")
    assert [p.payout_date for p in _payouts(path, "stripe")] == [date(2026, 11, 3)]


def test_stripe_local_time_without_a_zone_is_refused_naming_the_column(tmp_path: Path) -> None:
    path = _stripe_local_only(tmp_path, "2026-11-02 18:00:00")
    with pytest.raises(
        ImportFailed,
        match=r"stripe\.csv: line 2, column automatic_payout_effective_at: .* time zone the "
        r"report was run in.*automatic_payout_effective_at_utc",
    ):
        parse_psp(path, "stripe")


# --- Adyen: balance transfers are not items; no MerchantPayout, no payout -----------------


def test_adyen_batch_without_merchant_payout_yields_no_payout_and_says_so() -> None:
    batch = parse_psp(ADYEN_43, "adyen")
    assert batch.events == ()  # not a payout of -50.00 EUR with ±38,9xx fees
    reasons = [s.reason for s in batch.skipped]
    assert any("no MerchantPayout row, so no payout" in r and "net -1.08 EUR" in r for r in reasons)
    assert any("Balancetransfer 38922.65 EUR" in r for r in reasons)
    assert any("Balancetransfer -38971.57 EUR" in r for r in reasons)


def test_adyen_next_batch_payout_carries_the_transferred_balance() -> None:
    (payout,) = _payouts(ADYEN_44, "adyen")
    assert payout.payout_id == "ShopEU-batch-44"
    assert payout.net_amount == Decimal("39090.07")  # 38,971.57 carried in + 118.50
    assert [(i.kind, i.gross, i.fee) for i in payout.items] == [
        ("charge", Decimal("120.00"), Decimal("1.50"))
    ]
    reasons = [s.reason for s in parse_psp(ADYEN_44, "adyen").skipped]
    assert any("short of its net by 38971.57" in r for r in reasons)


def test_adyen_batches_in_one_file_put_the_carried_items_in_the_next_payout(
    tmp_path: Path,
) -> None:
    both = tmp_path / "batches.csv"
    rows_44 = ADYEN_44.read_text().splitlines()[1:]
    both.write_text(ADYEN_43.read_text() + "\n".join(rows_44) + "\n")
    (payout,) = _payouts(both, "adyen")
    assert payout.payout_id == "ShopEU-batch-44"
    assert [(i.payment_id, i.kind) for i in payout.items] == [
        ("8816178952390101", "charge"),
        ("8516178952429050", "adjustment"),
        ("8816178952400201", "charge"),
    ]
    assert payout.fee_amount == Decimal("52.58")  # 1.08 + 50.00 + 1.50: no transfer is a fee
    assert str(payout.payout_date) == "2026-11-11"


def test_adyen_batch_paying_out_only_a_carried_balance_is_a_payout_without_items(
    tmp_path: Path,
) -> None:
    lines = ADYEN_44.read_text().splitlines()
    path = tmp_path / "batch_44.csv"
    path.write_text("\n".join([lines[0], lines[1], lines[3].replace("39090.07", "38971.57")]))
    (payout,) = _payouts(path, "adyen")
    assert (payout.net_amount, payout.items) == (Decimal("38971.57"), ())


def test_adyen_merchant_payout_with_neither_items_nor_carried_balance_is_refused(
    tmp_path: Path,
) -> None:
    lines = ADYEN_44.read_text().splitlines()
    path = tmp_path / "batch_44.csv"
    path.write_text("\n".join([lines[0], lines[3]]))
    with pytest.raises(ImportFailed, match=r"line 2: payout ShopEU-batch-44 has no items"):
        parse_psp(path, "adyen")


# --- Alipay: UTF-8 as well as GBK ----------------------------------------------------------


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["utf-8", "utf-8 with BOM"])
def test_alipay_bill_saved_as_utf8_reads_like_the_gbk_download(tmp_path: Path, bom: bytes) -> None:
    utf8 = tmp_path / "alipay.csv"
    utf8.write_bytes(bom + ALIPAY.read_bytes().decode("gbk").encode("utf-8"))
    first = [e.model_dump_json() for e in parse_psp(ALIPAY, "alipay").events]
    second = [e.model_dump_json() for e in parse_psp(utf8, "alipay").events]
    assert second == first


def test_alipay_bytes_neither_utf8_nor_gbk_are_refused_naming_the_line(tmp_path: Path) -> None:
    broken = tmp_path / "alipay.csv"
    broken.write_bytes(ALIPAY.read_bytes().replace(b"ORD-4002", b"ORD-\xff\xff"))
    with pytest.raises(ImportFailed, match=r"alipay\.csv: line 7: neither UTF-8 nor GBK text"):
        parse_psp(broken, "alipay")


# --- files of another report type ----------------------------------------------------------


def test_wechat_fund_flow_bill_is_refused_as_such_not_as_incomplete() -> None:
    with pytest.raises(
        ImportFailed,
        match=r"fund_flow_bill_20261101\.csv: line 1, column 资金流水单号: this is a WeChat Pay "
        r"资金账单 \(fund-flow bill\), not the merchant 交易账单 \(trade bill\).*download the "
        r"交易账单",
    ):
        parse_psp(WECHAT_FUND_FLOW, "wechat_pay")


OTHER = PSP / "other_reports"
OTHER_REPORTS = [
    ("wechat_pay", "wechat_pay_personal_bill.csv",
     r"line 5, column 收/支: this is a WeChat Pay personal bill"),
    ("alipay", "alipay_personal_bill.csv",
     r"line 5, column 收/支: this is an Alipay personal bill"),
    ("alipay", "alipay_account_statement.csv",
     r"line 4, column 账务流水号: this is an Alipay 账务明细"),
    ("stripe", "stripe_payments_export.csv",
     r"line 1, column Seller Message: this is a Stripe Payments export"),
    ("stripe", "stripe_balance_change_from_activity_itemized.csv",
     r"line 1, column balance_transaction_id: this is a Stripe balance report"),
    ("stripe", "stripe_balance_summary.csv",
     r"line 1, column net_amount: this is a Stripe balance summary"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("provider", "name", "message"), OTHER_REPORTS, ids=[r[1] for r in OTHER_REPORTS]
)
def test_another_report_type_is_refused_naming_it_and_the_report_to_export(
    provider: str, name: str, message: str
) -> None:
    with pytest.raises(ImportFailed, match=rf"{name}: {message}.*(download|run|export)") as caught:
        parse_psp(OTHER / name, provider)
    assert "this importer reads" in str(caught.value)


SAMPLES = {
    "stripe": STRIPE,
    "adyen": PSP / "adyen_settlement_detail_report_batch_42.csv",
    "alipay": ALIPAY,
    "wechat_pay": PSP / "wechat_pay_trade_bill_20261101.csv",
    "paypal": PSP / "paypal_settlement_STL-20261102.01.009.CSV",
}
WRONG_READER = [(own, other) for own in SAMPLES for other in SAMPLES if other != own]


@pytest.mark.parametrize(
    ("owner", "provider"), WRONG_READER, ids=[f"{o}→{p}" for o, p in WRONG_READER]
)
def test_a_report_given_to_the_wrong_reader_names_the_provider_that_reads_it(
    owner: str, provider: str
) -> None:
    with pytest.raises(ImportFailed, match=rf"this is .*--provider {owner}$"):
        parse_psp(SAMPLES[owner], provider)


def test_bytes_that_are_not_utf8_in_a_stripe_report_are_refused_naming_the_line(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "stripe.csv"
    broken.write_bytes(STRIPE.read_bytes().replace(b"Order ORD-1002", b"Order \xe9-1002"))
    with pytest.raises(ImportFailed, match=r"stripe\.csv: line 3: not UTF-8 text"):
        parse_psp(broken, "stripe")


def test_alipay_summary_file_of_the_bill_zip_is_refused_naming_the_detail_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "20881234567890120156_20261101_业务明细(汇总).csv"
    path.write_bytes("#支付宝业务汇总查询\n#账号：[20881234567890120156]\n".encode("gbk"))
    with pytest.raises(ImportFailed, match=r"line 1, .*业务汇总 \(summary\) file.*业务明细"):
        parse_psp(path, "alipay")


def test_header_without_a_needed_column_names_the_column(tmp_path: Path) -> None:
    path = tmp_path / "stripe.csv"
    path.write_text(STRIPE.read_text().replace(",fee,", ",fees,", 1))
    with pytest.raises(ImportFailed, match=r"stripe\.csv: line 1, column fee: header lacks"):
        parse_psp(path, "stripe")


def test_cli_refuses_a_fund_flow_bill_with_status_2_and_publishes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["import", "psp", str(WECHAT_FUND_FLOW), "--provider", "wechat_pay", "--dry-run"])
    captured = capsys.readouterr()
    assert code == 2
    assert "fund-flow bill" in captured.err
    assert "dry run: nothing published" not in captured.err + captured.out


def test_stripe_payout_report_itself_is_not_mistaken_for_another_report() -> None:
    assert len(_payouts(STRIPE, "stripe")) == 2
