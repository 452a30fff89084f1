"""Which open items a bank line could pay: strategies named by cardinality.

`one_to_one`: one open item whose amount equals the line's (within tolerance) —
method `exact_amount`. `many_to_one`: several open items, oldest first, that add up to the
line — method `combination`. Both return every candidate they find, scored, so that the
caller can tell a unique answer from an ambiguous one.

The combination search is bounded so that no line can stall the processor: it looks at
most at `max_items` open items (the oldest) and takes at most `max_steps` search steps. A
step budget rather than a clock keeps the answer the same on every replay; the default is
sized to stay well under 50 ms per line on a slow core (see tests/unit/test_candidates.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

Method = Literal["exact_amount", "combination"]

ONE = Decimal(1)
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class OpenItem:
    """An order of the customer with money still to receive."""

    order_id: str
    currency: str
    open_amount: Decimal
    due_date: date | None


@dataclass(frozen=True, slots=True)
class Candidate:
    items: tuple[OpenItem, ...]
    method: Method
    confidence: Decimal

    @property
    def total(self) -> Decimal:
        return sum((i.open_amount for i in self.items), ZERO)

    @property
    def order_ids(self) -> tuple[str, ...]:
        return tuple(i.order_id for i in self.items)


@dataclass(frozen=True)
class SearchBounds:
    max_items: int = 20
    max_steps: int = 20_000
    max_solutions: int = 5  # more than one already makes the line ambiguous
    window_days: int = 120  # how far an item's due date may be from the booking date


@dataclass(frozen=True, slots=True)
class Proposals:
    candidates: tuple[Candidate, ...]  # ranked, best first
    complete: bool  # False when the search ran out of steps

    @property
    def unique(self) -> Candidate | None:
        return self.candidates[0] if self.complete and len(self.candidates) == 1 else None


# --- predicates ---------------------------------------------------------------------------


def amounts_agree(a: Decimal, b: Decimal, tolerance: Decimal) -> bool:
    return abs(a - b) <= tolerance


def same_currency(item: OpenItem, currency: str) -> bool:
    return item.currency == currency


def within_window(item: OpenItem, booked: date, window_days: int) -> bool:
    if item.due_date is None:
        return True
    return abs(item.due_date - booked) <= timedelta(days=window_days)


def oldest_first(items: Sequence[OpenItem]) -> list[OpenItem]:
    return sorted(items, key=lambda i: (i.due_date or date.max, i.order_id))


# --- scoring -----------------------------------------------------------------------------


def score(method: Method, difference: Decimal, tolerance: Decimal, parts: int) -> Decimal:
    """Confidence of a proposal: an exact amount beats a combination, an exact sum beats
    one within tolerance, and every further item in a combination costs a little."""
    base = Decimal("0.95") if method == "exact_amount" else Decimal("0.85")
    base -= Decimal("0.03") * max(0, parts - 2)
    if tolerance > 0 and difference:
        base -= Decimal("0.2") * min(ONE, abs(difference) / tolerance)
    return max(Decimal("0.05"), base).quantize(Decimal("0.01"))


# --- strategies --------------------------------------------------------------------------


def eligible(
    items: Sequence[OpenItem], currency: str, booked: date, bounds: SearchBounds
) -> list[OpenItem]:
    return oldest_first(
        [
            i
            for i in items
            if same_currency(i, currency)
            and i.open_amount > 0
            and within_window(i, booked, bounds.window_days)
        ]
    )


def one_to_one(items: Sequence[OpenItem], amount: Decimal, tolerance: Decimal) -> list[Candidate]:
    return [
        Candidate((i,), "exact_amount", score("exact_amount", amount - i.open_amount, tolerance, 1))
        for i in items
        if amounts_agree(i.open_amount, amount, tolerance)
    ]


def many_to_one(
    items: Sequence[OpenItem], amount: Decimal, tolerance: Decimal, bounds: SearchBounds
) -> tuple[list[Candidate], bool]:
    """Sets of two or more items (oldest first) whose amounts add up to `amount`; the flag
    is False when the step budget ran out before every set was tried."""
    pool = list(items[: bounds.max_items])
    # suffix[k]: the most items k.. could still add, to prune branches that cannot reach.
    suffix = [ZERO] * (len(pool) + 1)
    for k in range(len(pool) - 1, -1, -1):
        suffix[k] = suffix[k + 1] + pool[k].open_amount
    found: list[tuple[OpenItem, ...]] = []
    steps = 0
    complete = True
    chosen: list[OpenItem] = []

    def search(start: int, total: Decimal) -> None:
        nonlocal steps, complete
        for k in range(start, len(pool)):
            if len(found) >= bounds.max_solutions:
                return
            steps += 1
            if steps > bounds.max_steps:
                complete = False
                return
            if total + suffix[k] < amount - tolerance:
                return  # even every remaining item would not reach the amount
            running = total + pool[k].open_amount
            if running > amount + tolerance:
                continue
            chosen.append(pool[k])
            if len(chosen) >= 2 and amounts_agree(running, amount, tolerance):
                found.append(tuple(chosen))
            search(k + 1, running)
            chosen.pop()
            if not complete:
                return

    search(0, ZERO)
    candidates = [
        Candidate(c, "combination", score("combination", amount - _sum(c), tolerance, len(c)))
        for c in found
    ]
    return candidates, complete and len(found) < bounds.max_solutions


def _sum(items: Sequence[OpenItem]) -> Decimal:
    return sum((i.open_amount for i in items), ZERO)


def propose(
    items: Sequence[OpenItem],
    amount: Decimal,
    currency: str,
    booked: date,
    tolerance: Decimal,
    bounds: SearchBounds,
    payer_confidence: Decimal = ONE,
) -> Proposals:
    """The candidates for a line of `amount`: exact amounts if there are any, else
    combinations; ranked by confidence, then oldest first."""
    pool = eligible(items, currency, booked, bounds)
    exact = one_to_one(pool, amount, tolerance)
    if exact:
        found, complete = exact, True
    else:
        found, complete = many_to_one(pool, amount, tolerance, bounds)
    rank = {item.order_id: n for n, item in enumerate(pool)}
    ranked = sorted(
        (
            Candidate(
                c.items, c.method, (c.confidence * payer_confidence).quantize(Decimal("0.01"))
            )
            for c in found
        ),
        key=lambda c: (-c.confidence, [rank[o] for o in c.order_ids]),
    )
    return Proposals(tuple(ranked), complete)
