"""Retail orders (web, Tmall, JD, POS): how shoppers pay, return, dispute, and what goes wrong."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from schemas import events as ev
from schemas.events import ReasonCode
from services.simulator.engine import Item, Order, Simulation
from services.simulator.stream import at
from services.simulator.world import (
    PROVIDER_OF_METHOD,
    REGIONS,
    RETAIL_CHANNELS,
    RETAIL_METHODS,
    SELLER_ACCOUNTS,
    cents,
    money,
    person,
)

R = ReasonCode
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def _weighted(sim: Simulation, options: tuple[tuple[str, int], ...]) -> str:
    names, weights = zip(*options, strict=True)
    chosen: str = sim.rng.choices(names, weights)[0]
    return chosen


def new_order(
    sim: Simulation, n: int, placed_at: datetime, channel: str | None = None, *, emit: bool = True
) -> Order:
    rng = sim.rng
    channel = channel or _weighted(sim, RETAIL_CHANNELS)
    number = rng.randrange(sim.retail_customers)
    customer_id = f"CUST-R{number:07d}"
    region = REGIONS[number % len(REGIONS)]
    if number not in sim.retail_known:
        sim.retail_known.add(number)
        upsert = ev.CustomerUpsertedData(
            customer_id=customer_id, name=person(rng), region=region, segment="retail"
        )
        moment = placed_at - MINUTE
        sim.emit(ev.CustomerUpserted, upsert, moment, f"shop-{channel}", customer_id)
    lines = tuple(
        ev.OrderLine(
            sku=f"SKU-{rng.randrange(1, 5_000):05d}",
            quantity=Decimal(rng.randint(1, 3)),
            unit_price=money(rng, 9, 600),
        )
        for _ in range(rng.randint(1, 4))
    )
    total = sum((line.quantity * line.unit_price for line in lines), Decimal(0))
    order = Order(f"ORD-{n:07d}", customer_id, channel, "CNY", total, placed_at, 0, region, lines)
    if emit:
        place(sim, order)
    return order


def place(sim: Simulation, order: Order) -> None:
    data = ev.OrderPlacedData(
        order_id=order.order_id,
        customer_id=order.customer_id,
        channel=order.channel,
        currency=order.currency,
        total_amount=order.total,
        placed_at=order.placed_at,
        payment_terms_days=order.terms_days,
        region=order.region,
        lines=order.lines,
    )
    source = "erp" if order.channel == "b2b" else f"shop-{order.channel}"
    sim.emit(ev.OrderPlaced, data, order.placed_at, source, order.order_id)


def amend(sim: Simulation, order: Order, total: Decimal, moment: datetime, reason: str) -> None:
    data = ev.OrderAmendedData(
        order_id=order.order_id, total_amount=total, currency=order.currency, reason=reason
    )
    key = f"{order.order_id}/{moment.isoformat()}"
    sim.emit(ev.OrderAmended, data, moment, f"shop-{order.channel}", key)


def cancel(sim: Simulation, order: Order, moment: datetime, reason: str) -> None:
    data = ev.OrderCancelledData(order_id=order.order_id, reason=reason)
    sim.emit(ev.OrderCancelled, data, moment, f"shop-{order.channel}", order.order_id)


def refund(
    sim: Simulation, order: Order, payment_id: str, method: str, amount: Decimal, moment: datetime
) -> None:
    refund_id = f"RFD-{payment_id.removeprefix('PAY-')}-{moment:%m%d%H%M}"
    data = ev.RefundIssuedData(
        refund_id=refund_id,
        order_id=order.order_id,
        payment_id=payment_id,
        amount=amount,
        currency=order.currency,
        issued_at=moment,
    )
    if sim.emit(ev.RefundIssued, data, moment, f"shop-{order.channel}", refund_id) is None:
        return
    if method in PROVIDER_OF_METHOD:
        item = _item(payment_id, order.order_id, "refund", -amount)
        sim.add_item(method, order.currency, moment.date(), item)


def _item(
    payment_id: str,
    order_id: str,
    kind: Literal["refund", "chargeback", "adjustment"],
    gross: Decimal,
) -> Item:
    return Item(payment_id, order_id, kind, gross, Decimal(0))


def chargeback(
    sim: Simulation, order: Order, payment_id: str, method: str, opened: datetime, outcome: str
) -> None:
    chargeback_id = f"CB-{payment_id.removeprefix('PAY-')}"
    data = ev.ChargebackOpenedData(
        chargeback_id=chargeback_id,
        payment_id=payment_id,
        order_id=order.order_id,
        amount=order.total,
        currency=order.currency,
        opened_at=opened,
    )
    sim.emit(ev.ChargebackOpened, data, opened, f"psp-{method}", chargeback_id)
    debit = _item(payment_id, order.order_id, "chargeback", -order.total)
    sim.add_item(method, order.currency, opened.date(), debit)
    if outcome == "open":
        return
    closed = opened + 2 * DAY
    resolved = ev.ChargebackResolvedData(
        chargeback_id=chargeback_id,
        order_id=order.order_id,
        outcome="won" if outcome == "won" else "lost",
    )
    sim.emit(ev.ChargebackResolved, resolved, closed, f"psp-{method}", chargeback_id)
    if outcome == "won":
        item = _item(payment_id, order.order_id, "adjustment", order.total)
        sim.add_item(method, order.currency, closed.date(), item)


# --- clean orders ---------------------------------------------------------------------------


def clean(sim: Simulation, n: int, placed_at: datetime) -> Order:
    """An order that ends without any mismatch, through one of the everyday paths."""
    rng = sim.rng
    order = new_order(sim, n, placed_at)
    method = _weighted(sim, RETAIL_METHODS[order.channel])
    paid_at = placed_at + rng.randint(1, 5) * MINUTE
    if method == "cod":
        # Cash collected by the courier on delivery; until then the order is simply open.
        if rng.random() < 0.1:
            cancel(sim, order, placed_at + 30 * MINUTE, "customer cancelled before shipping")
            return order
        delivered = at((placed_at + rng.randint(2, 4) * DAY).date(), rng.randint(10, 18))
        sim.capture(order, "cod", order.total, delivered, "1")
        return order
    if method == "bank_transfer":
        bank_transfer(sim, order, paid_at)
        return order
    if method == "split":
        voucher = cents(order.total * Decimal(rng.choice(("0.1", "0.2", "0.3"))))
        psp = "card" if order.channel == "web" else "alipay"
        sim.capture(order, "voucher", voucher, paid_at, "v")
        sim.capture(order, psp, order.total - voucher, paid_at + MINUTE, "1")
        return order
    path = rng.random()
    if path < 0.05:  # cancelled before any payment
        cancel(sim, order, placed_at + 20 * MINUTE, "out of stock")
    elif path < 0.10:  # paid, cancelled the next day, refunded in full
        pay = sim.capture(order, method, order.total, paid_at, "1")
        next_day = at((placed_at + DAY).date(), rng.randint(9, 17))
        cancel(sim, order, next_day, "customer cancelled")
        refund(sim, order, pay.payment_id, method, order.total, next_day + MINUTE)
    elif path < 0.16 and len(order.lines) > 1:  # one line returned: amended and refunded
        pay = sim.capture(order, method, order.total, paid_at, "1")
        line = order.lines[-1]
        returned = line.quantity * line.unit_price
        later = at((placed_at + rng.randint(1, 3) * DAY).date(), rng.randint(9, 17))
        amend(sim, order, order.total - returned, later, "line returned")
        refund(sim, order, pay.payment_id, method, returned, later + MINUTE)
    elif path < 0.22:  # price adjusted before payment, then paid the new total
        new_total = max(cents(order.total * Decimal("0.9")), Decimal("1.00"))
        amend(sim, order, new_total, placed_at + MINUTE, "coupon applied")
        sim.capture(order, method, new_total, paid_at + MINUTE, "1")
    elif path < 0.27:  # a few fen short: within tolerance, written off
        short = Decimal(rng.randint(1, 50)) / 100
        sim.capture(order, method, order.total - short, paid_at, "1")
    elif path < 0.29 and method in ("card", "paypal"):  # disputed; the seller won or lost
        pay = sim.capture(order, method, order.total, paid_at, "1")
        opened = at((placed_at + rng.randint(1, 2) * DAY).date(), rng.randint(9, 17))
        chargeback(sim, order, pay.payment_id, method, opened, rng.choice(("won", "lost")))
    elif path < 0.32:  # captured with the shipping estimate, the excess reversed
        excess = money(rng, 1, 30)
        pay = sim.capture(order, method, order.total + excess, paid_at, "1", payout="none")
        reversed_at = paid_at + rng.randint(10, 90) * MINUTE
        reversal = ev.PaymentReversedData(
            payment_id=pay.payment_id,
            order_id=order.order_id,
            amount=excess,
            currency=order.currency,
            reason="shipping cheaper than estimated",
        )
        key = f"{pay.payment_id}/reversal"
        sim.emit(ev.PaymentReversed, reversal, reversed_at, f"shop-{order.channel}", key)
        # The PSP pays out what stayed captured, with the fee it charged on the capture.
        charge = Item(pay.payment_id, order.order_id, "charge", order.total, pay.fee or Decimal(0))
        sim.add_item(method, order.currency, paid_at.date(), charge)
    else:
        sim.capture(order, method, order.total, paid_at, "1")
    return order


def bank_transfer(sim: Simulation, order: Order, paid_at: datetime) -> None:
    """The shopper chose bank transfer: the shop records it, the bank line names the order."""
    rng = sim.rng
    sim.capture(order, "bank_transfer", order.total, paid_at, "1", reference=order.order_id)
    day = (paid_at + DAY).date()
    line_id = sim.next_line_id(day)
    data = ev.BankLineBookedData(
        line_id=line_id,
        account_id=SELLER_ACCOUNTS[order.currency],
        booking_date=day,
        amount=order.total,
        currency=order.currency,
        counterparty_name=person(rng),
        counterparty_account=f"62{rng.randrange(10**16, 10**17)}",
        remittance_info=rng.choice(
            (order.order_id, f"payment {order.order_id}", f"货款 {order.order_id}")
        ),
    )
    if sim.emit(ev.BankLineBooked, data, at(day, rng.randint(8, 16)), "bank-icbc", line_id):
        sim.truth.order_line(line_id, "reference", [(order.order_id, order.total)])
