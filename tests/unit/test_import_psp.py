"""The four PSP report samples (tests/data/psp) to payouts: totals, items, kinds, quirks."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from schemas import events as ev
from services.importers import ImportFailed, parse_psp

PSP = Path(__file__).resolve().parents[1] / "data" / "psp"
STRIPE = PSP / "stripe_payout_reconciliation_itemized.csv"
ADYEN = PSP / "adyen_settlement_detail_report_batch_42.csv"
ALIPAY = PSP / "alipay_business_detail_20261101_20261102.csv"
WECHAT = PSP / "wechat_pay_trade_bill_20261101.csv"


def _payouts(path: Path, provider: str) -> list[ev.PayoutReportedData]:
    return [e.data for e in parse_psp(path, provider).events if isinstance(e, ev.PayoutReported)]


# (file, provider, payout id, currency, gross, fee, net, items, kinds) - amounts in units
PAYOUTS = [
    (STRIPE, "stripe", "po_1QB0aaLkdIwHu7ixPayout01", "USD", "123.90", "21.08", "102.82", 4,
     ["charge", "charge", "refund", "chargeback"]),
    (STRIPE, "stripe", "po_1QB1bbLkdIwHu7ixPayout02", "USD", "200.00", "6.10", "193.90", 1,
     ["charge"]),
    (ADYEN, "adyen", "ShopEU-batch-42", "EUR", "264.90", "2.72", "262.18", 5,
     ["charge", "charge", "charge", "refund", "adjustment"]),
    (ALIPAY, "alipay", "alipay-20881234567890120156-20261101", "CNY", "194.50", "1.16",
     "193.34", 3, ["charge", "charge", "refund"]),
    (ALIPAY, "alipay", "alipay-20881234567890120156-20261102", "CNY", "32.00", "0.19", "31.81",
     1, ["charge"]),
    (WECHAT, "wechat_pay", "wechat_pay-1900000109-20261101", "CNY", "497.90", "2.99", "494.91",
     4, ["charge", "charge", "charge", "refund"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "provider", "payout_id", "currency", "gross", "fee", "net", "count", "kinds"),
    PAYOUTS,
    ids=[p[2] for p in PAYOUTS],
)
def test_report_rows_group_into_payouts_with_their_totals(
    path: Path,
    provider: str,
    payout_id: str,
    currency: str,
    gross: str,
    fee: str,
    net: str,
    count: int,
    kinds: list[str],
) -> None:
    (payout,) = [p for p in _payouts(path, provider) if p.payout_id == payout_id]
    assert (payout.currency, payout.provider) == (currency, provider)
    assert (payout.gross_amount, payout.fee_amount, payout.net_amount) == (
        Decimal(gross),
        Decimal(fee),
        Decimal(net),
    )
    assert len(payout.items) == count
    assert [i.kind for i in payout.items] == kinds
    assert sum(i.gross - i.fee for i in payout.items) == payout.net_amount


def test_adyen_net_is_the_merchant_payout_row_not_a_sum() -> None:
    (payout,) = _payouts(ADYEN, "adyen")
    assert payout.net_amount == Decimal("262.18")
    assert str(payout.payout_date) == "2026-11-03"
    assert payout.items[0].order_id == "ORD-2001"


def test_alipay_gbk_text_and_trailing_tabs_are_read() -> None:
    payouts = _payouts(ALIPAY, "alipay")
    items = [i for p in payouts for i in p.items]
    assert items[0].payment_id == "2026110122001412341000000001"  # no trailing tab
    assert items[0].order_id == "ORD-4001"
    assert items[2].kind == "refund"
    assert (items[2].gross, items[2].fee) == (Decimal("-50.00"), Decimal("-0.30"))


def test_wechat_backticks_are_stripped_and_summary_lines_are_not_items() -> None:
    (payout,) = _payouts(WECHAT, "wechat_pay")
    assert len(payout.items) == 4
    assert all("`" not in i.payment_id for i in payout.items)
    refund = payout.items[3]
    assert (refund.payment_id, refund.order_id) == ("4200002031202611010123456790", "ORD-3002")
    assert (refund.gross, refund.fee) == (Decimal("-20.00"), Decimal("-0.12"))


@pytest.mark.parametrize(("path", "provider"), [(p[0], p[1]) for p in PAYOUTS[::2]])
def test_parsing_a_report_twice_gives_identical_events(path: Path, provider: str) -> None:
    first = parse_psp(path, provider).events
    second = parse_psp(path, provider).events
    assert [e.id for e in first] == [e.id for e in second]
    assert [e.model_dump_json() for e in first] == [e.model_dump_json() for e in second]


def test_wechat_summary_that_disagrees_with_the_rows_fails(tmp_path: Path) -> None:
    broken = tmp_path / "bill.csv"
    broken.write_text(WECHAT.read_text(encoding="utf-8").replace("`4,`517.90", "`5,`517.90"))
    with pytest.raises(ImportFailed, match=r"bill\.csv: line 7: summary says 5 trades"):
        parse_psp(broken, "wechat_pay")


def test_alipay_summary_count_that_disagrees_fails(tmp_path: Path) -> None:
    broken = tmp_path / "alipay.csv"
    broken.write_bytes(
        ALIPAY.read_bytes().replace("交易合计：3笔".encode("gbk"), "交易合计：4笔".encode("gbk"))
    )
    with pytest.raises(ImportFailed, match=r"alipay\.csv: line 11: summary says 4"):
        parse_psp(broken, "alipay")


def test_stripe_row_whose_net_is_not_gross_minus_fee_names_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "stripe.csv"
    broken.write_text(STRIPE.read_text().replace("129.90,4.07,125.83", "129.90,4.07,125.00"))
    with pytest.raises(ImportFailed, match=r"stripe\.csv: line 2: gross 129.90 - fee 4.07"):
        parse_psp(broken, "stripe")


def test_amount_with_more_decimals_than_the_currency_names_line_and_column(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "bill.csv"
    broken.write_text(WECHAT.read_text(encoding="utf-8").replace("`0.78000", "`0.78123"))
    with pytest.raises(ImportFailed, match=r"line 2, column 手续费: 0.78123 has 5 decimals"):
        parse_psp(broken, "wechat_pay")
