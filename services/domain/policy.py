"""The matching policy: tolerances and settlement expectations, configurable per deployment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

DEFAULT_TOLERANCE = Decimal("0.50")
# How far a payout item's fee may be from the fee its capture reported.
DEFAULT_FEE_TOLERANCE = Decimal("0.01")

# Business days after capture by which a payment of this method should be in a payout.
# Bank transfers settle when their bank line is applied; vouchers need no settlement.
DEFAULT_SETTLEMENT_DAYS: Mapping[str, int] = MappingProxyType(
    {"card": 2, "alipay": 2, "wechat_pay": 2, "paypal": 2}
)
NO_SETTLEMENT_NEEDED = frozenset({"voucher"})


@dataclass(frozen=True)
class Policy:
    default_tolerance: Decimal = DEFAULT_TOLERANCE
    tolerance_by_currency: Mapping[str, Decimal] = field(default_factory=dict)
    settlement_days: Mapping[str, int] = field(default_factory=lambda: DEFAULT_SETTLEMENT_DAYS)
    fee_tolerance: Decimal = DEFAULT_FEE_TOLERANCE

    def tolerance(self, currency: str) -> Decimal:
        return self.tolerance_by_currency.get(currency, self.default_tolerance)

    def within(self, difference: Decimal, currency: str) -> bool:
        return abs(difference) <= self.tolerance(currency)
