"""What to simulate: volume, calendar, seed and the rate of every injected anomaly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType

from schemas.events import ReasonCode

DEFAULT_ANOMALY_RATE = 0.004  # share of orders that carry each reason code

DEFAULT_RATES: Mapping[ReasonCode, float] = MappingProxyType(
    dict.fromkeys(ReasonCode, DEFAULT_ANOMALY_RATE)
)


@dataclass(frozen=True)
class SimConfig:
    orders: int = 1_000
    days: int = 10  # business days on which orders are placed
    seed: int = 1
    start: date = date(2026, 11, 2)
    # Days after the last order day with no new orders: payouts, bank lines, late refunds and
    # one day.closed each, so that every time-driven reason of an anomaly is decided.
    tail_days: int = 7
    rates: Mapping[ReasonCode, float] = field(default_factory=lambda: DEFAULT_RATES)
    # Share of anomalies (UNDERPAID, OVERPAID, CHARGEBACK, PAYMENT_NOT_SETTLED) that a later
    # fact clears: a top-up, an amendment, a won dispute, a late payout.
    resolving_share: float = 0.25
    b2b_share: float = 0.12  # of clean orders
    duplicate_rate: float = 0.01  # events delivered twice with the same id
    resend_rate: float = 0.005  # captures sent again by upstream with a new event id
    late_rate: float = 0.03  # events delivered after later ones
    max_delay_minutes: int = 30  # bound of the out-of-order delivery
    payout_batch_items: int = 400  # items per payout report at most

    def __post_init__(self) -> None:
        if self.orders < 1 or self.days < 1:
            raise ValueError("orders and days must be at least 1")
        if self.tail_days < 6:
            raise ValueError("tail_days must be at least 6: time-driven reasons need them")
        total = sum(self.rates.values())
        if total > 0.9 or any(r < 0 for r in self.rates.values()):
            raise ValueError(f"anomaly rates must be non-negative and sum to <= 0.9, got {total}")
        if not 0 <= self.max_delay_minutes <= 120:
            raise ValueError("max_delay_minutes must be between 0 and 120")

    def rate(self, reason: ReasonCode) -> float:
        return self.rates.get(reason, 0.0)
