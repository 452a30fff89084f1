"""B2B orders: invoices on payment terms, credit notes, and bank transfers that name the
order, name it wrongly, name nothing, or pay several invoices at once."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from schemas import events as ev
from schemas.events import ReasonCode
from services.simulator.engine import Order, Planned, Simulation
from services.simulator.retail import amend, place
from services.simulator.stream import at
from services.simulator.world import (
    SELLER_ACCOUNTS,
    B2BCustomer,
    cents,
    garbled,
    money,
    name_variants,
    spelling_variants,
)

R = ReasonCode
DAY = timedelta(days=1)


def upsert_customers(sim: Simulation) -> None:
    for number, c in enumerate(sim.b2b):
        data = ev.CustomerUpsertedData(
            customer_id=c.customer_id,
            name=c.name,
            credit_limit=c.credit_limit,
            currency=c.currency,
            payment_terms_days=c.terms_days,
            region=c.region,
            segment="b2b",
            bank_accounts=c.accounts,
            payer_names=c.payer_names,
        )
        moment = at(sim.first_day, 0, number // 60 % 60, number % 60)
        sim.emit(ev.CustomerUpserted, data, moment, "erp", c.customer_id, disorder=False)


def _order(
    sim: Simulation, n: int, placed_at: datetime, customer: B2BCustomer, suffix: str = ""
) -> Order:
    rng = sim.rng
    lines = tuple(
        ev.OrderLine(
            sku=f"SKU-{rng.randrange(1, 5_000):05d}",
            quantity=Decimal(rng.choice((10, 20, 50, 100, 200))),
            unit_price=money(rng, 5, 300),
        )
        for _ in range(rng.randint(1, 5))
    )
    total = sum((line.quantity * line.unit_price for line in lines), Decimal(0))
    order = Order(
        f"ORD-{n:07d}{suffix}",
        customer.customer_id,
        "b2b",
        customer.currency,
        total,
        placed_at,
        customer.terms_days,
        customer.region,
        lines,
    )
    place(sim, order)
    return order


def _invoice(sim: Simulation, order: Order, amount: Decimal) -> tuple[date, date]:
    """Issue the order's invoice when it ships; (issue day, due date)."""
    issued = at((order.placed_at + sim.rng.randint(0, 1) * DAY).date(), 18)
    issued = max(issued, order.placed_at + timedelta(minutes=5))
    due = issued.date() + timedelta(days=order.terms_days)
    data = ev.InvoiceIssuedData(
        invoice_id=order.order_id.replace("ORD-", "INV-"),
        order_id=order.order_id,
        customer_id=order.customer_id,
        amount=amount,
        currency=order.currency,
        issued_at=issued,
        due_date=due,
    )
    sim.emit(ev.InvoiceIssued, data, issued, "erp", data.invoice_id)
    return issued.date(), due


def _pay_day(customer: B2BCustomer, issued: date, due: date) -> date:
    """The customer's last payment run on or before the due date, but not before the
    invoice has been open for two days (the day after a credit note); when no run falls in
    between, the first run after that."""
    earliest = issued + 2 * DAY
    day = due
    while day >= earliest and day.weekday() != customer.run_weekday:
        day -= DAY
    if day >= earliest:
        return day
    day = earliest
    while day.weekday() != customer.run_weekday:
        day += DAY
    return day


def _style(sim: Simulation) -> str:
    return sim.rng.choices(("reference", "noref", "garbled", "combine"), weights=(45, 20, 10, 25))[
        0
    ]


def clean(sim: Simulation, n: int, placed_at: datetime) -> None:
    rng = sim.rng
    customer = rng.choice(sim.b2b)
    order = _order(sim, n, placed_at, customer)
    issued, due = _invoice(sim, order, order.total)
    owed = order.total
    if rng.random() < 0.05:  # goods returned: a credit note, and the order amended to match
        credit = cents(order.total * Decimal(rng.choice(("0.05", "0.1", "0.2"))))
        noted = at(issued + DAY, 9)
        data = ev.CreditNoteIssuedData(
            credit_note_id=order.order_id.replace("ORD-", "CN-"),
            invoice_id=order.order_id.replace("ORD-", "INV-"),
            order_id=order.order_id,
            amount=credit,
            currency=order.currency,
            issued_at=noted,
        )
        sim.emit(ev.CreditNoteIssued, data, noted, "erp", data.credit_note_id)
        amend(sim, order, order.total - credit, noted + timedelta(minutes=1), "goods returned")
        owed = order.total - credit
    pay_day = _pay_day(customer, issued, due)
    if rng.random() < 0.08 and max(pay_day, due + 3 * DAY) <= sim.last_day:
        # Half on time, the rest a few days late (UNDERPAID in between, cleared by then).
        first = cents(owed * Decimal("0.4"))
        sim.plan(pay_day, Planned(customer, order.order_id, first, "reference"))
        sim.plan(due + 3 * DAY, Planned(customer, order.order_id, owed - first, "reference"))
        return
    sim.plan(pay_day, Planned(customer, order.order_id, owed, _style(sim)))


def invoice_order_mismatch(sim: Simulation, n: int, placed_at: datetime) -> None:
    customer = sim.rng.choice(sim.b2b)
    order = _order(sim, n, placed_at, customer)
    billed = order.total + money(sim.rng, 10, 500) * sim.rng.choice((1, -1))
    billed = max(billed, Decimal("1.00"))
    issued, due = _invoice(sim, order, billed)
    sim.plan(
        _pay_day(customer, issued, due), Planned(customer, order.order_id, billed, "reference")
    )
    sim.truth.expect(
        R.INVOICE_ORDER_MISMATCH,
        R.INVOICE_ORDER_MISMATCH,
        "invoiced another amount than ordered",
        order_id=order.order_id,
    )


def underpaid(sim: Simulation, n: int, placed_at: datetime) -> bool:
    """A B2B invoice paid in part by its due date; False when no due date falls in the
    stream (the caller then injects a retail one)."""
    customer = sim.rng.choice(sim.b2b)
    # Invoiced a day later at most, paid at most a week after due (or the earliest day).
    latest_payment = placed_at.date() + (1 + max(customer.terms_days, 2) + 7) * DAY
    if latest_payment > sim.last_day:
        return False
    order = _order(sim, n, placed_at, customer)
    issued, due = _invoice(sim, order, order.total)
    part = cents(order.total * Decimal(sim.rng.choice(("0.3", "0.5", "0.7"))))
    sim.plan(_pay_day(customer, issued, due), Planned(customer, order.order_id, part, "reference"))
    sim.truth.expect(
        R.UNDERPAID, R.UNDERPAID, "invoice paid in part, past due", order_id=order.order_id
    )
    return True


def ambiguous_bank_line(sim: Simulation, n: int, placed_at: datetime) -> None:
    """Two open invoices of one customer for the same amount, and a line paying one of them
    without saying which."""
    customer = sim.rng.choice(sim.b2b)
    first = _order(sim, n, placed_at, customer)
    twin = Order(
        first.order_id + "-2",
        first.customer_id,
        "b2b",
        first.currency,
        first.total,
        placed_at + timedelta(minutes=3),
        first.terms_days,
        first.region,
        first.lines,
    )
    place(sim, twin)
    sim.counters.extra_orders += 1
    issued = max(_invoice(sim, first, first.total)[0], _invoice(sim, twin, twin.total)[0])
    day = issued + 2 * DAY
    line_id = sim.next_line_id(day)
    data = _line(sim, customer, line_id, day, first.total, None, known_account=True)
    if sim.emit(ev.BankLineBooked, data, at(day, 11), "bank", line_id) is None:
        return
    sim.truth.ambiguous_line(line_id, [first.order_id, twin.order_id])
    sim.truth.expect(
        R.AMBIGUOUS_BANK_LINE,
        R.AMBIGUOUS_BANK_LINE,
        "two open invoices of the same amount",
        line_id=line_id,
    )


def _line(
    sim: Simulation,
    customer: B2BCustomer,
    line_id: str,
    day: date,
    amount: Decimal,
    remittance: str | None,
    *,
    known_account: bool,
) -> ev.BankLineBookedData:
    rng = sim.rng
    if known_account:
        account = rng.choice(customer.accounts)
        name = rng.choice(spelling_variants(customer.name))
    else:  # paid from an account we have not seen: the name must tell who paid
        account = f"{customer.accounts[0][:2]}{rng.randrange(10**15, 10**16)}"
        name = rng.choice(name_variants(customer.name))
    return ev.BankLineBookedData(
        line_id=line_id,
        account_id=SELLER_ACCOUNTS[customer.currency],
        booking_date=day,
        value_date=day,
        amount=amount,
        currency=customer.currency,
        counterparty_name=name,
        counterparty_account=account,
        remittance_info=remittance,
        end_to_end_id=rng.choice((None, "NOTPROVIDED", f"E2E-{line_id[-7:]}")),
    )


def payment_run(sim: Simulation, day: date) -> None:
    """Every B2B payment planned for `day`: one line each, or one line for several."""
    planned = sorted(sim.plans.pop(day, []), key=lambda p: (p.customer.customer_id, p.order_id))
    by_customer: dict[str, list[Planned]] = {}
    for p in planned:
        by_customer.setdefault(p.customer.customer_id, []).append(p)
    minute = 0
    for group in by_customer.values():
        together = [p for p in group if p.style == "combine"]
        alone = [p for p in group if p.style != "combine"]
        if len(together) == 1:
            alone.append(together[0])
            together = []
        batches = [together[i : i + 3] for i in range(0, len(together), 3)]
        if batches and len(batches[-1]) == 1:  # a lone remainder goes with the one before
            batches[-2].extend(batches.pop())
        for p in alone:
            minute += 1
            _pay(sim, day, minute, [p])
        for batch in batches:
            minute += 1
            _pay(sim, day, minute, batch)


def _pay(sim: Simulation, day: date, minute: int, paid: list[Planned]) -> None:
    rng = sim.rng
    customer = paid[0].customer
    amount = sum((p.amount for p in paid), Decimal(0))
    line_id = sim.next_line_id(day)
    if len(paid) > 1:
        method, remittance = "combination", rng.choice((None, f"payment {day:%B}", "货款"))
    else:
        order_id = paid[0].order_id
        style = "noref" if paid[0].style == "combine" else paid[0].style
        invoice_id = order_id.replace("ORD-", "INV-")
        if style == "reference":
            method = "reference"
            remittance = rng.choice((order_id, f"{order_id} / {invoice_id}", f"货款 {order_id}"))
        elif style == "garbled":
            method, remittance = "exact_amount", garbled(order_id, rng)
        else:
            method, remittance = "exact_amount", rng.choice((None, "payment", "货款"))
    # A reference names the order; without one the payer must be known by account or name.
    known = rng.random() < (0.6 if method == "reference" else 0.8)
    data = _line(sim, customer, line_id, day, amount, remittance, known_account=known)
    moment = at(day, 10 + minute // 60 % 8, minute % 60)
    if sim.emit(ev.BankLineBooked, data, moment, "bank", line_id) is not None:
        sim.truth.order_line(line_id, method, [(p.order_id, p.amount) for p in paid])
