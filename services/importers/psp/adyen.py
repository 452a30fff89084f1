"""Adyen "Settlement details report" (settlement_detail_report_batch_N.csv).

One payout per merchant account and batch: payout id "<merchant account>-batch-<N>". The
MerchantPayout row gives the amount paid out and its date; other rows are items. Gross
is Gross Credit - Gross Debit (GC); net is Net Credit - Net Debit (NC); the fee is what
lies between (commission, markup, scheme fees, interchange). Reports in which the gross
and net currency differ (conversion by Adyen) are refused: the item fees would mix two
currencies.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.importers.errors import ImportFailed
from services.importers.psp.common import PayoutRow, ReportedPayout, amount, csv_rows

REQUIRED = (
    "Merchant Account",
    "Psp Reference",
    "Merchant Reference",
    "Type",
    "Creation Date",
    "Gross Currency",
    "Gross Debit (GC)",
    "Gross Credit (GC)",
    "Net Currency",
    "Net Debit (NC)",
    "Net Credit (NC)",
    "Batch Number",
)
_KINDS = {
    "Settled": "charge",
    "SettledBulk": "charge",
    "Refunded": "refund",
    "RefundedBulk": "refund",
    "Chargeback": "chargeback",
    "ChargebackReversed": "chargeback",
    "SecondChargeback": "chargeback",
}
_NOT_ITEMS = {"MerchantPayout"}


def parse_adyen(path: str, raw: bytes) -> tuple[list[PayoutRow], dict[str, object]]:
    text = raw.decode("utf-8-sig")
    rows: list[PayoutRow] = []
    reported: dict[str, object] = {}
    for where, row in csv_rows(path, text, REQUIRED):
        batch = row["Batch Number"]
        if not batch:
            raise ImportFailed(path, f"{where}, column Batch Number", "empty")
        payout_id = f"{row['Merchant Account']}-batch-{batch}"
        net_currency = row["Net Currency"]
        gross_currency = row["Gross Currency"] or net_currency
        if not net_currency:
            raise ImportFailed(path, f"{where}, column Net Currency", "empty")
        if gross_currency != net_currency:
            raise ImportFailed(
                path, where, f"gross in {gross_currency} but net in {net_currency}: not supported"
            )
        try:
            created = date.fromisoformat(row["Creation Date"][:10])
        except ValueError:
            raise ImportFailed(
                path, f"{where}, column Creation Date", f"not a date: {row['Creation Date']!r}"
            ) from None
        net = amount(path, where, "Net Credit (NC)", row["Net Credit (NC)"], net_currency) - amount(
            path, where, "Net Debit (NC)", row["Net Debit (NC)"], net_currency
        )
        if row["Type"] in _NOT_ITEMS:
            reported[payout_id] = ReportedPayout(-net, created, where)
            continue
        gross = amount(
            path, where, "Gross Credit (GC)", row["Gross Credit (GC)"], gross_currency
        ) - amount(path, where, "Gross Debit (GC)", row["Gross Debit (GC)"], gross_currency)
        payment_id = row["Psp Reference"] or row.get("Modification Reference") or ""
        if not payment_id:
            raise ImportFailed(path, f"{where}, column Psp Reference", "empty")
        rows.append(
            PayoutRow(
                payout_id=payout_id,
                payout_date=created,
                currency=net_currency,
                payment_id=payment_id,
                order_id=row["Merchant Reference"] or None,
                kind=_KINDS.get(row["Type"], "adjustment"),
                gross=gross,
                fee=gross - net + Decimal(0),
                where=where,
            )
        )
    return rows, reported
