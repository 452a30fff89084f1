"""Adyen "Settlement details report" (settlement_detail_report_batch_N.csv).

One payout per merchant account and batch: payout id "<merchant account>-batch-<N>". The
MerchantPayout row gives the amount paid out and its date; other rows are items. Gross
is Gross Credit - Gross Debit (GC); net is Net Credit - Net Debit (NC); the fee is what
lies between (commission, markup, scheme fees, interchange). Reports in which the gross
and net currency differ (conversion by Adyen) are refused: the item fees would mix two
currencies.

Balancetransfer rows move a batch's balance to the next batch instead of paying it out
(a balance too small or negative to pay). They are not payout items: a batch without a
MerchantPayout row yields no payout, and its items go into the payout of the next batch of
the same merchant account in the file, whose MerchantPayout carries that balance. When that
batch is in another file the summary says so; a payout whose carried-in balance came from
a batch not in the file reaches the matcher with items short of its net by that balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from services.importers.batch import Skipped
from services.importers.errors import ImportFailed
from services.importers.psp.common import (
    Parsed,
    PayoutRow,
    ReportedPayout,
    Signature,
    amount,
    csv_rows,
    decode_utf8_report,
    other_providers,
)

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
PAYOUT = "merchantpayout"
BALANCE_TRANSFER = "balancetransfer"
OTHER_REPORTS = (
    Signature(
        ("Record Type", "Booking Date"),
        "an Adyen payment accounting report",
        "download the Settlement details report (settlement_detail_report_batch_N.csv)",
        absent=("Batch Number",),
    ),
    *other_providers("adyen"),
)
READS = "the settlement details report this importer reads"


@dataclass
class _Batch:
    merchant: str
    number: str
    first_where: str
    currency: str
    items: list[PayoutRow] = field(default_factory=list)
    payout: ReportedPayout | None = None
    transfers: list[tuple[str, Decimal]] = field(default_factory=list)  # (where, net)


def parse_adyen(path: str, raw: bytes) -> Parsed:
    text = decode_utf8_report(path, raw, OTHER_REPORTS, READS, "an Adyen report")
    batches: dict[tuple[str, str], _Batch] = {}
    for where, row in csv_rows(path, text, REQUIRED, signatures=OTHER_REPORTS, reads=READS):
        number = row["Batch Number"]
        if not number:
            raise ImportFailed(path, f"{where}, column Batch Number", "empty")
        net_currency = row["Net Currency"]
        gross_currency = row["Gross Currency"] or net_currency
        if not net_currency:
            raise ImportFailed(path, f"{where}, column Net Currency", "empty")
        if gross_currency != net_currency:
            raise ImportFailed(
                path, where, f"gross in {gross_currency} but net in {net_currency}: not supported"
            )
        key = (row["Merchant Account"], number)
        batch = batches.setdefault(key, _Batch(*key, where, net_currency))
        created = _date(path, where, row["Creation Date"])
        net = amount(path, where, "Net Credit (NC)", row["Net Credit (NC)"], net_currency) - amount(
            path, where, "Net Debit (NC)", row["Net Debit (NC)"], net_currency
        )
        kind = row["Type"].lower()
        if kind == PAYOUT:
            batch.payout = ReportedPayout(-net, created, where)
            continue
        if kind == BALANCE_TRANSFER:
            batch.transfers.append((where, net))
            continue
        gross = amount(
            path, where, "Gross Credit (GC)", row["Gross Credit (GC)"], gross_currency
        ) - amount(path, where, "Gross Debit (GC)", row["Gross Debit (GC)"], gross_currency)
        payment_id = row["Psp Reference"] or row.get("Modification Reference") or ""
        if not payment_id:
            raise ImportFailed(path, f"{where}, column Psp Reference", "empty")
        batch.items.append(
            PayoutRow(
                payout_id=_payout_id(batch),
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
    return _payouts(list(batches.values()))


def _payouts(batches: list[_Batch]) -> Parsed:
    """Payouts of the batches that have one, each with the items of the batches before it
    that carried their balance forward instead (same merchant account, batch order)."""
    rows: list[PayoutRow] = []
    reported: dict[str, ReportedPayout] = {}
    skipped: list[Skipped] = []
    order = sorted(batches, key=lambda b: (b.merchant, _batch_order(b.number)))
    waiting: dict[str, list[_Batch]] = {}  # merchant -> batches without a payout, in order
    for batch in order:
        earlier_here = [b.number for b in waiting.get(batch.merchant, [])]
        skipped.extend(
            _transfer_note(batch, where, net, earlier_here) for where, net in batch.transfers
        )
        if batch.payout is None:
            waiting.setdefault(batch.merchant, []).append(batch)
            continue
        payout_id = _payout_id(batch)
        for earlier in waiting.pop(batch.merchant, []):
            skipped.append(_no_payout(earlier, f"its items are in payout {payout_id}"))
            rows.extend(replace(item, payout_id=payout_id) for item in earlier.items)
        rows.extend(batch.items)
        carried_in = any(net > 0 for _, net in batch.transfers)
        reported[payout_id] = replace(
            batch.payout, itemless_currency=batch.currency if carried_in else None
        )
    for pending in waiting.values():
        for earlier in pending:
            skipped.append(
                _no_payout(
                    earlier,
                    "its items go to the payout of a later batch, not in this file: import "
                    "that batch's report together with this one",
                )
            )
    return Parsed(rows, reported, tuple(skipped))


def _transfer_note(batch: _Batch, where: str, net: Decimal, earlier_here: list[str]) -> Skipped:
    what = f"Balancetransfer {net} {batch.currency}"
    if net < 0:
        return Skipped(
            where, f"{what}: batch {batch.number}'s balance carried to a later batch, not an item"
        )
    if earlier_here:
        return Skipped(
            where,
            f"{what} into batch {batch.number} from batch {earlier_here[-1]} (in this file): "
            f"not an item: batch {earlier_here[-1]}'s items are in this batch's payout",
        )
    return Skipped(
        where,
        f"{what} into batch {batch.number} from an earlier batch not in this file: not an "
        f"item, so the payout carrying it has items short of its net by {net}",
    )


def _no_payout(batch: _Batch, fate: str) -> Skipped:
    net = sum((i.gross - i.fee for i in batch.items), Decimal(0))
    return Skipped(
        f"batch {batch.number} of {batch.merchant} (from {batch.first_where})",
        f"no MerchantPayout row, so no payout: {len(batch.items)} items, net {net} "
        f"{batch.currency}; {fate}",
    )


def _payout_id(batch: _Batch) -> str:
    return f"{batch.merchant}-batch-{batch.number}"


def _batch_order(number: str) -> tuple[int, str]:
    return (int(number), "") if number.isdigit() else (0, number)


def _date(path: str, where: str, text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ImportFailed(
            path, f"{where}, column Creation Date", f"not a date: {text!r}"
        ) from None
