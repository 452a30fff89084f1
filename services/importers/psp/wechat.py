"""WeChat Pay trade bill (交易账单, downloadbill type ALL), as downloaded.

Every data cell starts with a backtick (so spreadsheets keep long ids as text); after the
rows come a summary header (总交易单数,…) and one summary row, which are checked, not
imported. WeChat Pay settles each merchant's day: payout "wechat_pay-<mch_id>-<YYYYMMDD>".
SUCCESS rows are charges (gross 应结订单金额), REFUND rows refunds (gross -退款金额, of the
original 微信订单号); 手续费 is the fee (negative when returned on a refund), shown with five
decimals of which only the currency's two may be non-zero.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.importers.errors import ImportFailed
from services.importers.psp.common import (
    PERSONAL_BILLS,
    Parsed,
    PayoutRow,
    Signature,
    amount,
    csv_rows,
    decode_chinese_bill,
    other_providers,
    refuse_other_report_lines,
)

TIME = "交易时间"
MCH_ID = "商户号"
TRANSACTION_ID = "微信订单号"
ORDER_NO = "商户订单号"
STATUS = "交易状态"
CURRENCY = "货币种类"
SETTLED = "应结订单金额"
REFUNDED = "退款金额"
FEE = "手续费"
REQUIRED = (TIME, MCH_ID, TRANSACTION_ID, ORDER_NO, STATUS, CURRENCY, SETTLED, REFUNDED, FEE)
SUMMARY_HEADER = "总交易单数"
_CURRENCIES = {"CNY": "CNY", "人民币": "CNY"}
_INSTEAD = "download the 交易账单 (trade bill, bill type ALL) of the same day instead"
OTHER_REPORTS = (
    Signature(("资金流水单号",), "a WeChat Pay 资金账单 (fund-flow bill)", _INSTEAD),
    Signature(("资金流水总笔数",), "a WeChat Pay 资金账单 (fund-flow bill)", _INSTEAD),
    *PERSONAL_BILLS,
    *other_providers("wechat_pay"),
)
READS = "the merchant 交易账单 (trade bill) this importer reads"


def parse_wechat(path: str, raw: bytes) -> Parsed:
    lines = decode_chinese_bill(path, raw).splitlines()  # older bills were GBK
    refuse_other_report_lines(path, lines, OTHER_REPORTS, READS)
    cut = next((n for n, line in enumerate(lines) if line.startswith(SUMMARY_HEADER)), None)
    if cut is None:
        raise ImportFailed(path, "", f"no summary ('{SUMMARY_HEADER},…'): is the bill complete?")
    body = "\n".join(line.replace("`", "") for line in lines[:cut])
    rows = []
    for where, row in csv_rows(path, body, REQUIRED):
        currency = _CURRENCIES.get(row[CURRENCY], row[CURRENCY])
        try:
            day = date.fromisoformat(row[TIME][:10])
        except ValueError:
            raise ImportFailed(
                path, f"{where}, column {TIME}", f"not a time: {row[TIME]!r}"
            ) from None
        status = row[STATUS]
        if status == "SUCCESS":
            kind, gross = "charge", amount(path, where, SETTLED, row[SETTLED], currency)
        elif status == "REFUND":
            kind, gross = "refund", -amount(path, where, REFUNDED, row[REFUNDED], currency)
        else:
            raise ImportFailed(path, f"{where}, column {STATUS}", f"unknown status {status!r}")
        rows.append(
            PayoutRow(
                payout_id=f"wechat_pay-{row[MCH_ID]}-{day:%Y%m%d}",
                payout_date=day,
                currency=currency,
                payment_id=row[TRANSACTION_ID],
                order_id=row[ORDER_NO] or None,
                kind=kind,
                gross=gross,
                fee=amount(path, where, FEE, row[FEE], currency),
                where=where,
            )
        )
    _check_summary(path, lines, cut, rows)
    return Parsed(rows)


def _check_summary(path: str, lines: list[str], cut: int, rows: list[PayoutRow]) -> None:
    header = [c.strip() for c in lines[cut].split(",")]
    if cut + 1 >= len(lines):
        raise ImportFailed(path, f"line {cut + 1}", "summary header without its row")
    values = [c.strip().lstrip("`") for c in lines[cut + 1].split(",")]
    summary = dict(zip(header, values, strict=False))
    where = f"line {cut + 2}"
    if summary.get(SUMMARY_HEADER, "") != str(len(rows)):
        raise ImportFailed(
            path,
            where,
            f"summary says {summary.get(SUMMARY_HEADER)} trades, the bill has {len(rows)}",
        )
    fees = summary.get("手续费总金额")
    if fees and rows:
        total = sum((r.fee for r in rows), Decimal(0))
        if amount(path, where, "手续费总金额", fees, rows[0].currency) != total:
            raise ImportFailed(
                path, where, f"summary fee total {fees} but the rows add up to {total}"
            )
