"""Alipay business detail export (支付宝业务明细查询), as downloaded: GBK (or UTF-8 after a
spreadsheet round trip), `#` preface and summary lines, every cell followed by a tab.

Alipay credits the merchant's Alipay balance; there is no batch id, so each account's
completion day is one payout: "alipay-<account>-<YYYYMMDD>". 交易 rows are charges and
退款 rows refunds; 商家实收（元） is the signed gross and 服务费（元） the fee as exported
(negative when charged), so the item fee is its negation. The `#交易合计：N笔` and
`#退款合计：N笔` summary lines are checked against the rows.
"""

from __future__ import annotations

import re
from datetime import date

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

TRADE_NO = "支付宝交易号"
ORDER_NO = "商户订单号"
BUSINESS_TYPE = "业务类型"
FINISHED = "完成时间"
RECEIVED = "商家实收（元）"
SERVICE_FEE = "服务费（元）"
REQUIRED = (TRADE_NO, ORDER_NO, BUSINESS_TYPE, FINISHED, RECEIVED, SERVICE_FEE)
_KINDS = {"交易": "charge", "退款": "refund"}
_ACCOUNT = re.compile(r"#账号：\[(\d+)\]")
_COUNT = re.compile(r"#(交易|退款)合计：(\d+)笔")
_INSTEAD = "download the 业务明细 (business detail) bill from the merchant 对账中心 instead"
OTHER_REPORTS = (
    Signature(("账务流水号",), "an Alipay 账务明细 (account statement)", _INSTEAD),
    Signature(
        ("#支付宝业务汇总查询",),
        "the 业务汇总 (summary) file of an Alipay bill download",
        "import the 业务明细 (business detail) file of the same zip instead",
    ),
    *PERSONAL_BILLS,
    *other_providers("alipay"),
)
READS = "the merchant 业务明细 (business detail) bill this importer reads"


def parse_alipay(path: str, raw: bytes) -> Parsed:
    lines = decode_chinese_bill(path, raw).splitlines()
    refuse_other_report_lines(path, lines, OTHER_REPORTS, READS)
    account = next((m[1] for text_line in lines if (m := _ACCOUNT.match(text_line))), None)
    if account is None:
        raise ImportFailed(path, "line 1", "no '#账号：[…]' line naming the Alipay account")
    first = next((n for n, text_line in enumerate(lines) if text_line[:1] not in ("", "#")), None)
    if first is None:
        raise ImportFailed(path, "", "no header row: only '#' lines")
    body: list[str] = []
    for text_line in lines[first:]:
        if text_line.startswith("#"):
            break
        body.append(text_line)
    rows = []
    counted = {"charge": 0, "refund": 0}
    for where, row in csv_rows(path, "\n".join(body), REQUIRED, first_line=first + 1):
        kind = _KINDS.get(row[BUSINESS_TYPE], "adjustment")
        counted[kind] = counted.get(kind, 0) + 1
        try:
            finished = date.fromisoformat(row[FINISHED][:10])
        except ValueError:
            raise ImportFailed(
                path, f"{where}, column {FINISHED}", f"not a time: {row[FINISHED]!r}"
            ) from None
        if not row[TRADE_NO]:
            raise ImportFailed(path, f"{where}, column {TRADE_NO}", "empty")
        rows.append(
            PayoutRow(
                payout_id=f"alipay-{account}-{finished:%Y%m%d}",
                payout_date=finished,
                currency="CNY",
                payment_id=row[TRADE_NO],
                order_id=row[ORDER_NO] or None,
                kind=kind,
                gross=amount(path, where, RECEIVED, row[RECEIVED], "CNY"),
                fee=-amount(path, where, SERVICE_FEE, row[SERVICE_FEE], "CNY"),
                where=where,
            )
        )
    for n, summary_line in enumerate(lines, 1):
        found = _COUNT.match(summary_line)
        if found:
            kind = "charge" if found[1] == "交易" else "refund"
            if int(found[2]) != counted[kind]:
                raise ImportFailed(
                    path, f"line {n}", f"summary says {found[2]} but the file has {counted[kind]}"
                )
    return Parsed(rows)
