"""Stripe "Payout reconciliation - itemized" report (payout_reconciliation.itemized.*).

One row per balance transaction in a payout; amounts in major units, currency lower case.
The payment an item settles is its PaymentIntent, else its charge, else its source object;
`payment_metadata[order_id]` gives the order when the shop put it there.

The payout date is the UTC date of `automatic_payout_effective_at_utc`: Stripe's payout
arrives on a UTC day, and the unsuffixed column is in the time zone the report was run in
(America/Chicago shows 18:00 the day before). An unsuffixed time is used only when it carries
its offset; a file with neither is refused rather than dated a day off.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.importers.errors import ImportFailed
from services.importers.psp.common import (
    Parsed,
    PayoutRow,
    Signature,
    amount,
    csv_rows,
    decode_utf8_report,
    other_providers,
)

REQUIRED = (
    "automatic_payout_id",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
    "source_id",
)
# Where a payout date is read from, best first: (column, its times are UTC).
_DATE_COLUMNS = (
    ("automatic_payout_effective_at_utc", True),
    ("automatic_payout_effective_at", False),
    ("available_on_utc", True),
    ("available_on", False),
)
_KINDS = {
    "charge": "charge",
    "refund": "refund",
    "refund_failure": "refund",
    "dispute": "chargeback",
    "dispute_reversal": "chargeback",
}
_INSTEAD = (
    "run Reports → Payout reconciliation and download the itemized report "
    "(payout_reconciliation.itemized)"
)
OTHER_REPORTS = (
    Signature(("Seller Message",), "a Stripe Payments export (Dashboard → Payments)", _INSTEAD),
    Signature(("Amount Refunded", "Captured"), "a Stripe Payments export", _INSTEAD),
    Signature(("Arrival Date",), "a Stripe Payouts export (payouts without items)", _INSTEAD),
    Signature(("net_amount", "category"), "a Stripe balance summary report", _INSTEAD),
    Signature(
        ("count", "reporting_category"),
        "a Stripe payout reconciliation summary (totals, no items)",
        _INSTEAD,
        absent=("balance_transaction_id",),
    ),
    Signature(
        ("balance_transaction_id", "reporting_category"),
        "a Stripe balance report (balance change from activity: no payout ids)",
        _INSTEAD,
        absent=("automatic_payout_id",),
    ),
    *other_providers("stripe"),
)
READS = "the itemized payout reconciliation report this importer reads"


def parse_stripe(path: str, raw: bytes) -> Parsed:
    text = decode_utf8_report(path, raw, OTHER_REPORTS, READS, "a Stripe report")
    rows = []
    for where, row in csv_rows(path, text, REQUIRED, signatures=OTHER_REPORTS, reads=READS):
        payout_id = row["automatic_payout_id"]
        if not payout_id:
            raise ImportFailed(path, f"{where}, column automatic_payout_id", "empty")
        currency = row["currency"].upper()
        gross = amount(path, where, "gross", row["gross"], currency)
        fee = amount(path, where, "fee", row["fee"], currency)
        net = amount(path, where, "net", row["net"], currency)
        if gross - fee != net:
            raise ImportFailed(path, where, f"gross {gross} - fee {fee} is not net {net}")
        payment_id = row.get("payment_intent_id") or row.get("charge_id") or row["source_id"]
        if not payment_id:
            raise ImportFailed(path, f"{where}, column source_id", "empty")
        rows.append(
            PayoutRow(
                payout_id=payout_id,
                payout_date=payout_date(path, where, row),
                currency=currency,
                payment_id=payment_id,
                order_id=row.get("payment_metadata[order_id]") or None,
                kind=_KINDS.get(row["reporting_category"], "adjustment"),
                gross=gross,
                fee=fee,
                where=where,
            )
        )
    return Parsed(rows)


def payout_date(path: str, where: str, row: dict[str, str]) -> date:
    """The UTC day of the payout, from the first date column the row fills."""
    for column, is_utc in _DATE_COLUMNS:
        text = row.get(column, "")
        if not text:
            continue
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ImportFailed(path, f"{where}, column {column}", f"not a time: {text!r}") from None
        if moment.tzinfo is None:
            if not is_utc:
                raise ImportFailed(
                    path,
                    f"{where}, column {column}",
                    f"{text!r} is in the time zone the report was run in, which the file "
                    f"does not state: include the {column}_utc column when running the report",
                )
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).date()
    raise ImportFailed(
        path, f"{where}, column automatic_payout_effective_at_utc", "empty: no payout date"
    )
