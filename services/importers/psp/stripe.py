"""Stripe "Payout reconciliation - itemized" report (payout_reconciliation.itemized.*).

One row per balance transaction in a payout; amounts in major units, currency lower case.
The payment an item settles is its PaymentIntent, else its charge, else its source object;
`payment_metadata[order_id]` gives the order when the shop put it there.
"""

from __future__ import annotations

from datetime import date

from services.importers.errors import ImportFailed
from services.importers.psp.common import PayoutRow, amount, csv_rows

REQUIRED = (
    "automatic_payout_id",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
    "source_id",
)
_KINDS = {
    "charge": "charge",
    "refund": "refund",
    "refund_failure": "refund",
    "dispute": "chargeback",
    "dispute_reversal": "chargeback",
}


def parse_stripe(path: str, raw: bytes) -> tuple[list[PayoutRow], dict[str, object]]:
    text = raw.decode("utf-8-sig")
    rows = []
    for where, row in csv_rows(path, text, REQUIRED):
        payout_id = row["automatic_payout_id"]
        if not payout_id:
            raise ImportFailed(path, f"{where}, column automatic_payout_id", "empty")
        currency = row["currency"].upper()
        gross = amount(path, where, "gross", row["gross"], currency)
        fee = amount(path, where, "fee", row["fee"], currency)
        net = amount(path, where, "net", row["net"], currency)
        if gross - fee != net:
            raise ImportFailed(path, where, f"gross {gross} - fee {fee} is not net {net}")
        effective = (
            row.get("automatic_payout_effective_at")
            or row.get("automatic_payout_effective_at_utc")
            or row.get("available_on")
            or ""
        )
        try:
            payout_date = date.fromisoformat(effective[:10])
        except ValueError:
            raise ImportFailed(
                path, f"{where}, column automatic_payout_effective_at", f"not a date: {effective!r}"
            ) from None
        payment_id = row.get("payment_intent_id") or row.get("charge_id") or row["source_id"]
        if not payment_id:
            raise ImportFailed(path, f"{where}, column source_id", "empty")
        rows.append(
            PayoutRow(
                payout_id=payout_id,
                payout_date=payout_date,
                currency=currency,
                payment_id=payment_id,
                order_id=row.get("payment_metadata[order_id]") or None,
                kind=_KINDS.get(row["reporting_category"], "adjustment"),
                gross=gross,
                fee=fee,
                where=where,
            )
        )
    return rows, {}
