"""Retail orders that go wrong, one function per reason code (and the facts that clear a
share of them), each writing what the ground truth expects."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from schemas import events as ev
from schemas.events import ReasonCode
from services.simulator.engine import Captured, Item, Order, Simulation
from services.simulator.retail import (
    DAY,
    MINUTE,
    amend,
    cancel,
    chargeback,
    clean,
    new_order,
    refund,
)
from services.simulator.stream import at
from services.simulator.world import (
    PROVIDER_OF_METHOD,
    PSP_CHANNEL_OF_METHOD,
    SELLER_ACCOUNTS,
    cents,
    money,
    stranger,
)

R = ReasonCode


def _psp_order(
    sim: Simulation, n: int, placed_at: datetime, methods: tuple[str, ...], *, emit: bool = True
) -> tuple[Order, str, datetime]:
    method = sim.rng.choice(methods)
    order = new_order(sim, n, placed_at, PSP_CHANNEL_OF_METHOD[method], emit=emit)
    return order, method, placed_at + sim.rng.randint(1, 5) * MINUTE


PSP = ("card", "alipay", "wechat_pay", "paypal")
CARDS = ("card", "paypal")


def _resolves(sim: Simulation) -> bool:
    return sim.rng.random() < sim.config.resolving_share


def underpaid(sim: Simulation, n: int, placed_at: datetime) -> None:
    order, method, paid_at = _psp_order(sim, n, placed_at, PSP)
    short = min(money(sim.rng, 2, 40), cents(order.total / 2))
    sim.capture(order, method, order.total - short, paid_at, "1")
    if _resolves(sim):
        topped = at((placed_at + DAY).date(), sim.rng.randint(9, 17))
        sim.capture(order, method, short, topped, "2")
        sim.truth.resolved(
            R.UNDERPAID, "the shortfall was paid the next day", order_id=order.order_id
        )
    else:
        sim.truth.expect(R.UNDERPAID, R.UNDERPAID, "paid short, past due", order_id=order.order_id)


def overpaid(sim: Simulation, n: int, placed_at: datetime) -> None:
    order, method, paid_at = _psp_order(sim, n, placed_at, PSP)
    extra = money(sim.rng, 1, 60)
    sim.capture(order, method, order.total + extra, paid_at, "1")
    if _resolves(sim):
        later = at((placed_at + DAY).date(), sim.rng.randint(9, 17))
        amend(sim, order, order.total + extra, later, "express shipping added")
        sim.truth.resolved(R.OVERPAID, "an amendment explained the excess", order_id=order.order_id)
    else:
        sim.truth.expect(
            R.OVERPAID, R.OVERPAID, "charged more than the order", order_id=order.order_id
        )


def duplicate_payment(sim: Simulation, n: int, placed_at: datetime) -> None:
    order, method, paid_at = _psp_order(sim, n, placed_at, PSP)
    sim.capture(order, method, order.total, paid_at, "1")
    second = sim.capture(order, method, order.total, paid_at + sim.rng.randint(1, 9) * MINUTE, "2")
    sim.truth.expect(
        R.DUPLICATE_PAYMENT,
        R.DUPLICATE_PAYMENT,
        "the shopper paid twice",
        order_id=order.order_id,
        payment_id=second.payment_id,
    )


def currency_mismatch(sim: Simulation, n: int, placed_at: datetime) -> None:
    order, method, paid_at = _psp_order(sim, n, placed_at, ("card",))
    usd = cents(order.total / Decimal("7.1"))
    pay = sim.capture(order, method, usd, paid_at, "1", currency="USD")
    sim.truth.expect(
        R.CURRENCY_MISMATCH,
        R.CURRENCY_MISMATCH,
        "captured in USD for a CNY order",
        order_id=order.order_id,
        payment_id=pay.payment_id,
    )


def payment_on_cancelled_order(sim: Simulation, n: int, placed_at: datetime) -> None:
    order, method, paid_at = _psp_order(sim, n, placed_at, PSP)
    cancel(sim, order, placed_at + MINUTE, "customer cancelled")
    sim.capture(order, method, order.total, paid_at + 2 * MINUTE, "1")
    sim.truth.expect(
        R.PAYMENT_ON_CANCELLED_ORDER,
        R.PAYMENT_ON_CANCELLED_ORDER,
        "captured after the cancellation, never refunded",
        order_id=order.order_id,
    )


def refund_exceeds_paid(sim: Simulation, n: int, placed_at: datetime) -> None:
    order, method, paid_at = _psp_order(sim, n, placed_at, PSP)
    pay = sim.capture(order, method, order.total, paid_at, "1")
    later = at((placed_at + DAY).date(), sim.rng.randint(9, 17))
    cancel(sim, order, later, "customer cancelled")
    refund(sim, order, pay.payment_id, method, order.total, later + MINUTE)
    refund(sim, order, pay.payment_id, method, order.total, later + 3 * MINUTE)
    sim.truth.expect(
        R.REFUND_EXCEEDS_PAID,
        R.REFUND_EXCEEDS_PAID,
        "refunded twice",
        order_id=order.order_id,
    )


def disputed(sim: Simulation, n: int, placed_at: datetime) -> None:
    order, method, paid_at = _psp_order(sim, n, placed_at, CARDS)
    pay = sim.capture(order, method, order.total, paid_at, "1")
    opened = at((placed_at + sim.rng.randint(1, 2) * DAY).date(), sim.rng.randint(9, 17))
    if _resolves(sim):
        chargeback(sim, order, pay.payment_id, method, opened, "won")
        sim.truth.resolved(
            R.CHARGEBACK, "dispute won", order_id=order.order_id, payment_id=pay.payment_id
        )
        return
    chargeback(sim, order, pay.payment_id, method, opened, "open")
    sim.truth.expect(
        R.CHARGEBACK,
        R.CHARGEBACK,
        "dispute open",
        order_id=order.order_id,
        payment_id=pay.payment_id,
    )


def payment_without_order(sim: Simulation, n: int, placed_at: datetime) -> None:
    order, method, paid_at = _psp_order(sim, n, placed_at, ("alipay", "wechat_pay"), emit=False)
    # The order never reaches us. Half name it (it stays unknown), half name nothing at all.
    names_order = sim.rng.random() < 0.5
    pay = sim.capture(
        order,
        method,
        order.total,
        paid_at,
        "1",
        order_id=order.order_id if names_order else None,
        reference=None if names_order else f"TB{sim.rng.randrange(10**17, 10**18)}",
    )
    sim.truth.expect(
        R.PAYMENT_WITHOUT_ORDER,
        R.PAYMENT_WITHOUT_ORDER,
        "no order arrived by the end of the next business day",
        payment_id=pay.payment_id,
        order_id=pay.order_id,
    )


def payment_not_settled(sim: Simulation, n: int, placed_at: datetime) -> None:
    order, method, paid_at = _psp_order(sim, n, placed_at, PSP)
    if _resolves(sim):
        pay = sim.capture(order, method, order.total, paid_at, "1", payout="caller")
        day = paid_at.date() + 4 * DAY
        payout_id = f"PO-{PROVIDER_OF_METHOD[method].name.upper()}-LATE-{order.order_id}"
        _dedicated(sim, pay, payout_id, day, bank=True)
        sim.truth.resolved(
            R.PAYMENT_NOT_SETTLED,
            "paid out late, after its settlement days",
            order_id=order.order_id,
            payment_id=pay.payment_id,
        )
        return
    pay = sim.capture(order, method, order.total, paid_at, "1", payout="none")
    sim.truth.expect(
        R.PAYMENT_NOT_SETTLED,
        R.PAYMENT_NOT_SETTLED,
        "the PSP never paid it out",
        order_id=order.order_id,
        payment_id=pay.payment_id,
    )


def fee_mismatch(sim: Simulation, n: int, placed_at: datetime) -> None:
    order, method, paid_at = _psp_order(sim, n, placed_at, PSP)
    # Truth is written when the payout is built, since only then is its id known.
    sim.capture(order, method, order.total, paid_at, "1", fee_extra=money(sim.rng, 1, 12))


def payout_amount_mismatch(sim: Simulation, n: int, placed_at: datetime) -> None:
    _payout_gone_wrong(sim, n, placed_at, R.PAYOUT_AMOUNT_MISMATCH)


def payout_not_in_bank(sim: Simulation, n: int, placed_at: datetime) -> None:
    _payout_gone_wrong(sim, n, placed_at, R.PAYOUT_NOT_IN_BANK)


def _payout_gone_wrong(sim: Simulation, n: int, placed_at: datetime, reason: ReasonCode) -> None:
    order, method, paid_at = _psp_order(sim, n, placed_at, PSP)
    pay = sim.capture(order, method, order.total, paid_at, "1", payout="caller")
    provider = PROVIDER_OF_METHOD[method]
    payout_id = f"PO-{provider.name.upper()}-X-{order.order_id}"
    day = paid_at.date() + provider.lag_days * DAY
    if reason is R.PAYOUT_NOT_IN_BANK:
        _dedicated(sim, pay, payout_id, day, bank=False)
        note = "no bank line ever paid this payout"
    else:
        difference = min(money(sim.rng, 1, 15), cents(order.total / 4))
        _dedicated(sim, pay, payout_id, day, bank=True, difference=difference)
        note = "the bank credited another amount than the payout's net"
    sim.truth.expect(reason, reason, note, payout_id=payout_id)
    sim.truth.expect(
        R.PAYMENT_NOT_SETTLED,
        reason,
        "its payout was never matched in the bank",
        order_id=order.order_id,
        payment_id=pay.payment_id,
    )


def _dedicated(
    sim: Simulation,
    pay: Captured,
    payout_id: str,
    day: date,
    *,
    bank: bool,
    difference: Decimal = Decimal(0),
) -> None:
    item = Item(pay.payment_id, pay.order_id, "charge", pay.amount, pay.fee or Decimal(0))
    sim.payout(
        payout_id,
        PROVIDER_OF_METHOD[pay.method].name,
        pay.currency,
        day,
        [item],
        bank_day=day if bank else None,
        bank_difference=difference,
        minute=30,
    )


def unmatched_bank_line(sim: Simulation, n: int, placed_at: datetime) -> None:
    clean(sim, n, placed_at)
    rng = sim.rng
    day = placed_at.date()
    line_id = sim.next_line_id(day)
    data = ev.BankLineBookedData(
        line_id=line_id,
        account_id=SELLER_ACCOUNTS["CNY"],
        booking_date=day,
        amount=money(rng, 50, 5_000),
        currency="CNY",
        counterparty_name=stranger(rng),
        counterparty_account=f"62{rng.randrange(10**16, 10**17)}",
        remittance_info=rng.choice((None, "转账", "payment", "deposit")),
    )
    booked = placed_at + rng.randint(10, 120) * MINUTE
    sim.emit(ev.BankLineBooked, data, booked, "bank-icbc", line_id)
    sim.truth.unmatched_line(line_id)
    sim.truth.expect(
        R.UNMATCHED_BANK_LINE,
        R.UNMATCHED_BANK_LINE,
        "an unknown payer, no reference",
        line_id=line_id,
    )
