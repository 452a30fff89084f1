"""The simulation loop: one business day at a time, streamed to disk in delivery order.

Per day: the day's orders (each with everything that follows from it: payments, refunds,
disputes, invoices, planned bank payments), the B2B customers' payment runs due that day,
the PSP payouts of the day's items, then every event due before midnight and the day's
`day.closed`. Only what is still pending (a few days of payouts and refunds, planned B2B
payments) stays in memory, so a million orders stream in bounded memory.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import IO, Literal, TypeVar

from schemas import events as ev
from schemas.base import CloudEvent, EventData
from schemas.codec import encode
from schemas.events import ReasonCode
from services.simulator.config import SimConfig
from services.simulator.stream import Delivery, EventFactory, at
from services.simulator.truth import TruthWriter
from services.simulator.world import (
    PROVIDER_OF_METHOD,
    PROVIDERS,
    SELLER_ACCOUNTS,
    B2BCustomer,
    b2b_customer,
    fee,
)

E = TypeVar("E", bound=CloudEvent)
R = ReasonCode

# Assumptions the truth makes about the payout and suspense processors (issue #5), which
# the contract leaves open; written into the truth's summary.
ASSUMPTIONS = (
    "PAYOUT_NOT_IN_BANK is raised within 3 days after the payout_date of a payout without "
    "bank line (the stream closes at least 4 more days after any such payout).",
    "A payout whose bank line differs from its net amount raises PAYOUT_AMOUNT_MISMATCH and "
    "is not matched: its items stay unsettled (PAYMENT_NOT_SETTLED, cause "
    "PAYOUT_AMOUNT_MISMATCH); the line raises nothing else.",
    "FEE_MISMATCH compares charge items with their capture's fee_amount; refund, chargeback "
    "and adjustment items carry fee 0. It is keyed by payout_id and payment_id.",
    "A payout missing from the bank leaves its charges unsettled: PAYMENT_NOT_SETTLED with "
    "cause PAYOUT_NOT_IN_BANK.",
    "Bank lines with garbled references, no reference or several invoices are resolved by "
    "payer (account, else a name equal after normalizing case, punctuation and legal "
    "suffix) and amount; their truth is the orders they pay.",
)


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: str
    channel: str
    currency: str
    total: Decimal
    placed_at: datetime
    terms_days: int
    region: str
    lines: tuple[ev.OrderLine, ...]


@dataclass(frozen=True)
class Captured:
    payment_id: str
    order_id: str | None
    method: str
    amount: Decimal
    currency: str
    fee: Decimal | None
    at: datetime


@dataclass
class Item:
    payment_id: str
    order_id: str | None
    kind: Literal["charge", "refund", "chargeback", "adjustment"]
    gross: Decimal
    fee: Decimal
    fee_mismatch: bool = False


@dataclass
class Planned:
    """A B2B bank payment a customer will make on a day."""

    customer: B2BCustomer
    order_id: str
    amount: Decimal
    style: str  # reference, noref, garbled, combine


@dataclass
class Counters:
    events: int = 0
    orders: int = 0
    extra_orders: int = 0  # twins of ambiguous bank lines
    bank_lines: int = 0
    payouts: int = 0
    by_type: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Simulation:
    def __init__(self, config: SimConfig, out: IO[bytes], truth: TruthWriter) -> None:
        self.config = config
        self.out = out
        self.truth = truth
        self.rng = random.Random(config.seed)
        self.factory = EventFactory(config.seed)
        self.first_day = config.start
        self.last_order_day = config.start + timedelta(days=config.days - 1)
        self.last_day = self.last_order_day + timedelta(days=config.tail_days)
        self.delivery = Delivery(config, self.rng, self.last_day)
        self.counters = Counters()
        self.payout_items: dict[date, dict[tuple[str, str], list[Item]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.plans: dict[date, list[Planned]] = defaultdict(list)
        self.retail_customers = max(20, config.orders // 3)
        self.retail_known: set[int] = set()
        taken: set[str] = set()
        b2b_orders = max(1, int(config.orders * config.b2b_share))
        self.b2b = [
            b2b_customer(n, self.rng, taken)
            for n in range(1, min(5_000, max(8, b2b_orders // 8)) + 1)
        ]
        self._line_seq = 0
        self._reasons = sorted(config.rates, key=lambda r: r.value)

    # --- events ---------------------------------------------------------------------------

    def emit(
        self,
        cls: type[E],
        data: EventData,
        moment: datetime,
        source: str,
        key: str,
        *,
        disorder: bool = True,
    ) -> E | None:
        """Build (validating) and queue an event; None when it falls after the last day."""
        if moment.date() > self.last_day:
            return None
        event = self.factory.make(cls, data, moment, source, key)
        self.delivery.send(event, disorder=disorder)
        return event

    def write(self, raw: bytes) -> None:
        self.out.write(raw + b"\n")
        self.counters.events += 1

    def next_line_id(self, day: date) -> str:
        self._line_seq += 1
        self.counters.bank_lines += 1
        return f"BL-{day:%Y%m%d}-{self._line_seq:07d}"

    # --- payments and payouts -------------------------------------------------------------

    def capture(
        self,
        order: Order,
        method: str,
        amount: Decimal,
        moment: datetime,
        suffix: str,
        *,
        currency: str | None = None,
        order_id: str | None = "",
        payout: str = "batch",  # batch | none (left out) | caller (a dedicated payout)
        fee_extra: Decimal | None = None,
        reference: str | None = None,
    ) -> Captured:
        payment_id = f"PAY-{order.order_id.removeprefix('ORD-')}-{suffix}"
        currency = currency or order.currency
        fee_amount = fee(method, amount, self.rng)
        named = order.order_id if order_id == "" else order_id
        data = ev.PaymentCapturedData(
            payment_id=payment_id,
            order_id=named,
            customer_id=order.customer_id,
            method=method,
            provider=PROVIDER_OF_METHOD[method].name if method in PROVIDER_OF_METHOD else None,
            amount=amount,
            currency=currency,
            fee_amount=fee_amount,
            captured_at=moment,
            reference=reference,
        )
        source = f"shop-{order.channel}"
        self.emit(ev.PaymentCaptured, data, moment, source, payment_id)
        if self.rng.random() < self.config.resend_rate:
            # Upstream sends the same capture again under a new event id: not a second payment.
            self.emit(ev.PaymentCaptured, data, moment, source, payment_id + "/resent")
        captured = Captured(payment_id, named, method, amount, currency, fee_amount, moment)
        if payout == "batch" and method in PROVIDER_OF_METHOD:
            item_fee = (fee_amount or Decimal(0)) + (fee_extra or Decimal(0))
            self.add_item(
                method,
                currency,
                moment.date(),
                Item(payment_id, named, "charge", amount, item_fee, fee_extra is not None),
            )
        return captured

    def add_item(self, method: str, currency: str, day: date, item: Item) -> None:
        provider = PROVIDER_OF_METHOD[method].name
        self.payout_items[day][(provider, currency)].append(item)

    def build_payouts(self, day: date) -> None:
        """The PSPs' payouts of the items dated `day`, and the bank lines that pay them."""
        for (provider_name, currency), items in sorted(self.payout_items.pop(day, {}).items()):
            provider = PROVIDERS[provider_name]
            size = self.config.payout_batch_items
            for batch, start in enumerate(range(0, len(items), size), start=1):
                payout_id = f"PO-{provider_name.upper()}-{currency}-{day:%Y%m%d}-{batch:02d}"
                payout_day = day + timedelta(days=provider.lag_days)
                # Alipay and WeChat Pay pay out T+1 and the bank sometimes books a day later;
                # T+2 payouts are booked on their day, within the 2 days of settlement.
                # Never in the last days, where the line would fall after the stream's end.
                late_ok = payout_day + timedelta(days=3) <= self.last_day
                delay = 1 if provider.lag_days == 1 and late_ok and self.rng.random() < 0.2 else 0
                self.payout(
                    payout_id,
                    provider_name,
                    currency,
                    payout_day,
                    items[start : start + size],
                    bank_day=payout_day + timedelta(days=delay),
                    minute=batch,
                )

    def payout(
        self,
        payout_id: str,
        provider_name: str,
        currency: str,
        payout_day: date,
        items: list[Item],
        *,
        bank_day: date | None,
        bank_difference: Decimal = Decimal(0),
        minute: int = 0,
    ) -> None:
        gross = sum((i.gross for i in items), Decimal(0))
        fees = sum((i.fee for i in items), Decimal(0))
        data = ev.PayoutReportedData(
            payout_id=payout_id,
            provider=provider_name,
            currency=currency,
            gross_amount=gross,
            fee_amount=fees,
            net_amount=gross - fees,
            payout_date=payout_day,
            items=tuple(
                ev.PayoutItem(
                    payment_id=i.payment_id,
                    order_id=i.order_id,
                    kind=i.kind,
                    gross=i.gross,
                    fee=i.fee,
                )
                for i in items
            ),
        )
        moment = at(payout_day, 5, minute % 60)
        if self.emit(ev.PayoutReported, data, moment, f"psp-{provider_name}", payout_id) is None:
            return
        self.counters.payouts += 1
        for item in items:
            if item.fee_mismatch:
                self.truth.expect(
                    R.FEE_MISMATCH,
                    R.FEE_MISMATCH,
                    "the PSP charged another fee than the capture's fee_amount",
                    payout_id=payout_id,
                    payment_id=item.payment_id,
                    order_id=item.order_id,
                )
        if bank_day is None:
            return
        provider = PROVIDERS[provider_name]
        line_id = self.next_line_id(bank_day)
        in_remittance = self.rng.random() < 0.7
        line = ev.BankLineBookedData(
            line_id=line_id,
            account_id=SELLER_ACCOUNTS[currency],
            booking_date=bank_day,
            value_date=bank_day,
            amount=gross - fees - bank_difference,
            currency=currency,
            counterparty_name=provider.legal_name,
            remittance_info=(
                f"{provider_name.upper()} PAYOUT {payout_id}"
                if in_remittance
                else f"{provider.legal_name} SETTLEMENT"
            ),
            bank_reference=None if in_remittance else payout_id,
            end_to_end_id=f"E2E{uuid.UUID(int=self.rng.getrandbits(128)).hex[:16].upper()}",
        )
        source = f"bank-{SELLER_ACCOUNTS[currency].split('-')[2].lower()}"
        moment = at(bank_day, 7, minute % 60)
        if self.emit(ev.BankLineBooked, line, moment, source, line_id) is not None:
            self.truth.payout_line(line_id, payout_id, matched=not bank_difference)

    # --- B2B payment runs ----------------------------------------------------------------

    def plan(self, day: date, planned: Planned) -> None:
        if day <= self.last_day:
            self.plans[day].append(planned)

    def release(self, moment: datetime) -> None:
        """Write every event due before `moment`: nothing generated later may precede it."""
        for raw in self.delivery.release_until(moment):
            self.write(raw)

    def close_day(self, day: date) -> None:
        self.release(at(day + timedelta(days=1), 0))
        data = ev.DayClosedData(date=day)
        event = ev.DayClosed(
            specversion="1.0",
            # The id `o2c clock close-day` gives the same day: closing it again is a no-op.
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"o2c:day.closed:{day.isoformat()}")),
            source="clock",
            type="o2c.day.closed.v1",
            time=at(day, 23, 59, 59),
            data=data,
        )
        self.write(encode(event))

    def summary(self) -> None:
        config = {
            f.name: getattr(self.config, f.name) for f in fields(self.config) if f.name != "rates"
        }
        config["start"] = self.config.start.isoformat()
        config["rates"] = {r.value: v for r, v in sorted(self.config.rates.items())}
        self.truth.summary(
            config=config,
            first_day=self.first_day.isoformat(),
            last_day=self.last_day.isoformat(),
            events=self.counters.events,
            orders=self.counters.orders,
            extra_orders=self.counters.extra_orders,
            bank_lines=self.counters.bank_lines,
            payouts=self.counters.payouts,
            duplicates=self.delivery.duplicates,
            delayed=self.delivery.delayed,
            assumptions=ASSUMPTIONS,
        )

    def draw_anomaly(self) -> ReasonCode | None:
        u = self.rng.random()
        for reason in self._reasons:
            u -= self.config.rates[reason]
            if u < 0:
                return reason
        return None
