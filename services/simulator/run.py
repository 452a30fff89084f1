"""`simulate(config, out, truth_out)`: the whole stream, one day at a time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import IO

from schemas.events import ReasonCode
from services.simulator import anomalies, b2b, retail
from services.simulator.config import SimConfig
from services.simulator.engine import Counters, Simulation
from services.simulator.stream import at
from services.simulator.truth import TruthWriter

R = ReasonCode
Scenario = Callable[[Simulation, int, datetime], None]

INJECT: dict[ReasonCode, Scenario] = {
    R.OVERPAID: anomalies.overpaid,
    R.DUPLICATE_PAYMENT: anomalies.duplicate_payment,
    R.CURRENCY_MISMATCH: anomalies.currency_mismatch,
    R.PAYMENT_WITHOUT_ORDER: anomalies.payment_without_order,
    R.PAYMENT_ON_CANCELLED_ORDER: anomalies.payment_on_cancelled_order,
    R.REFUND_EXCEEDS_PAID: anomalies.refund_exceeds_paid,
    R.CHARGEBACK: anomalies.disputed,
    R.PAYOUT_AMOUNT_MISMATCH: anomalies.payout_amount_mismatch,
    R.PAYOUT_NOT_IN_BANK: anomalies.payout_not_in_bank,
    R.PAYMENT_NOT_SETTLED: anomalies.payment_not_settled,
    R.FEE_MISMATCH: anomalies.fee_mismatch,
    R.UNMATCHED_BANK_LINE: anomalies.unmatched_bank_line,
    R.AMBIGUOUS_BANK_LINE: b2b.ambiguous_bank_line,
    R.INVOICE_ORDER_MISMATCH: b2b.invoice_order_mismatch,
}


def _underpaid(sim: Simulation, n: int, placed_at: datetime) -> None:
    if sim.rng.random() < 0.3 and b2b.underpaid(sim, n, placed_at):
        return
    anomalies.underpaid(sim, n, placed_at)


INJECT[R.UNDERPAID] = _underpaid
assert set(INJECT) == set(ReasonCode), "every reason code needs a scenario"


def _order_times(sim: Simulation, day: date, count: int) -> list[datetime]:
    # Shops are busy between 08:00 and 21:00; nothing of an order's day crosses midnight.
    seconds = sorted(sim.rng.randrange(13 * 3600) for _ in range(count))
    return [at(day, 8) + timedelta(seconds=s) for s in seconds]


def _place_orders(sim: Simulation, day: date, first: int, count: int) -> None:
    for offset, placed_at in enumerate(_order_times(sim, day, count)):
        if offset % 500 == 0:
            # Nothing generated from here on happens before this order (a customer record
            # comes a minute before its first order): what is due by then can be written.
            sim.release(placed_at - timedelta(minutes=5))
        n = first + offset
        sim.counters.orders += 1
        anomaly = sim.draw_anomaly()
        if anomaly is not None:
            sim.truth.injected_anomaly(anomaly)
            INJECT[anomaly](sim, n, placed_at)
        elif sim.rng.random() < sim.config.b2b_share:
            b2b.clean(sim, n, placed_at)
        else:
            retail.clean(sim, n, placed_at)


def simulate(config: SimConfig, out: IO[bytes], truth_out: IO[bytes]) -> Counters:
    """Write the stream to `out` and its ground truth to `truth_out`; returns the counts."""
    sim = Simulation(config, out, TruthWriter(truth_out))
    per_day, extra = divmod(config.orders, config.days)
    number = 1
    day = sim.first_day
    b2b.upsert_customers(sim)
    while day <= sim.last_day:
        index = (day - sim.first_day).days
        b2b.payment_run(sim, day)  # planned on earlier days, booked from 10:00
        if index < config.days:
            count = per_day + (1 if index < extra else 0)
            _place_orders(sim, day, number, count)
            number += count
        sim.build_payouts(day)
        sim.close_day(day)
        day += timedelta(days=1)
    assert not len(sim.delivery), "events left after the last day"
    sim.summary()
    return sim.counters
