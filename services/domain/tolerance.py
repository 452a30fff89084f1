"""Per-currency tolerance under which a difference is written off automatically."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

DEFAULT_TOLERANCE = Decimal("0.50")


@dataclass(frozen=True)
class Tolerances:
    default: Decimal = DEFAULT_TOLERANCE
    per_currency: Mapping[str, Decimal] = field(default_factory=dict)

    def of(self, currency: str) -> Decimal:
        return self.per_currency.get(currency, self.default)

    def within(self, difference: Decimal, currency: str) -> bool:
        return abs(difference) <= self.of(currency)
