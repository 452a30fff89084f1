"""What a file holds, per currency, as table rows for `o2c import … --dry-run`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.money import CURRENCY_DECIMALS, format_amount

BANK_HEADERS = ("currency", "entries", "credits", "debits", "net", "from", "to")
PSP_HEADERS = ("currency", "payouts", "items", "gross", "fees", "net", "from", "to")


@dataclass
class _Totals:
    count: int = 0
    items: int = 0
    credits: Decimal = Decimal(0)
    debits: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    net: Decimal = Decimal(0)
    days: list[date] = field(default_factory=list)


def summarize(events: Sequence[CloudEvent]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Headers and one row per currency (sorted), for bank lines or for payouts."""
    totals: dict[str, _Totals] = {}
    is_bank = all(isinstance(e, ev.BankLineBooked) for e in events)
    for event in events:
        if isinstance(event, ev.BankLineBooked):
            line = event.data
            t = totals.setdefault(line.currency, _Totals())
            t.count += 1
            if line.amount >= 0:
                t.credits += line.amount
            else:
                t.debits -= line.amount
            t.net += line.amount
            t.days.append(line.booking_date)
        elif isinstance(event, ev.PayoutReported):
            payout = event.data
            t = totals.setdefault(payout.currency, _Totals())
            t.count += 1
            t.items += len(payout.items)
            t.credits += payout.gross_amount
            t.fees += payout.fee_amount
            t.net += payout.net_amount
            t.days.append(payout.payout_date)
    rows: list[tuple[str, ...]] = []
    for currency in sorted(totals):
        t = totals[currency]
        span = (min(t.days).isoformat(), max(t.days).isoformat())
        if is_bank:
            rows.append(
                (
                    currency,
                    str(t.count),
                    _money(t.credits, currency),
                    _money(t.debits, currency),
                    _money(t.net, currency),
                    *span,
                )
            )
        else:
            rows.append(
                (
                    currency,
                    str(t.count),
                    str(t.items),
                    _money(t.credits, currency),
                    _money(t.fees, currency),
                    _money(t.net, currency),
                    *span,
                )
            )
    headers: tuple[str, ...] = BANK_HEADERS if is_bank else PSP_HEADERS
    return headers, rows


def _money(value: Decimal, currency: str) -> str:
    return format_amount(value.quantize(Decimal(1).scaleb(-CURRENCY_DECIMALS[currency])))
