"""Which open items a bank line could pay: strategies named by cardinality.

`one_to_one`: one open item whose amount equals the line's (within tolerance) —
method `exact_amount`. `many_to_one`: several open items, oldest first, that add up to the
line — method `combination`. Both return every candidate they find, scored, so that the
caller can tell a unique answer from an ambiguous one.

Several candidates can still have one answer: if exactly one of them adds up to the line
to the cent, it is the answer, and the others (within tolerance only) stay suggestions —
as a person would read a line of 80.00 against open items of 80.00 and 79.80.

The combination search is exact and bounded so that no line can stall the processor: it
looks at most at `max_items` open items (the oldest), splits them in two halves, lists
each half's subset sums that do not overshoot, and pairs them by binary search (meet in
the middle: 2 × 2^10 sums for 20 items, instead of up to 2^20 sets). It takes at most
`max_steps` steps (a sum listed or a pair tried) and keeps at most `max_solutions`
answers; past either it says the search is incomplete, so nothing is called unique. A
step budget rather than a clock keeps the answer the same on every replay; the default
stays well under 50 ms per line on a slow core (see tests/unit/test_candidates.py).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

Method = Literal["exact_amount", "combination"]

ONE = Decimal(1)
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True, init=False)
class OpenItem:
    """An order of the customer with money still to receive."""

    order_id: str
    currency: str
    open_amount: Decimal
    due_date: date | None

    # Written out, not generated (init=False): see services/domain/native.py, "__init__".
    def __init__(
        self,
        order_id: str,
        currency: str,
        open_amount: Decimal,
        due_date: date | None,
    ) -> None:
        object.__setattr__(self, "order_id", order_id)
        object.__setattr__(self, "currency", currency)
        object.__setattr__(self, "open_amount", open_amount)
        object.__setattr__(self, "due_date", due_date)


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
    # Enough to tell one sum to the cent among a few within tolerance; past this many the
    # line is ambiguous whatever they are.
    max_solutions: int = 20
    window_days: int = 120  # how far an item's due date may be from the booking date


@dataclass(frozen=True, slots=True)
class Proposals:
    candidates: tuple[Candidate, ...]  # ranked, best first
    complete: bool  # False when the search ran out of steps or found too many answers
    amount: Decimal  # the line's

    @property
    def unique(self) -> Candidate | None:
        """The only candidate, or the only one that adds up to the line to the cent."""
        if not self.complete or not self.candidates:
            return None
        if len(self.candidates) == 1:
            return self.candidates[0]
        exact = [c for c in self.candidates if c.total == self.amount]
        return exact[0] if len(exact) == 1 else None


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
    """Sets of two or more items (among the oldest `max_items`) whose amounts add up to
    `amount` within `tolerance`; the flag is False when the step budget ran out or there
    were more than `max_solutions` sets."""
    pool = list(items[: bounds.max_items])
    to_units = _units(amount, tolerance, *(i.open_amount for i in pool))
    low = to_units(amount - tolerance)
    high = to_units(amount + tolerance)
    units = [to_units(i.open_amount) for i in pool]
    half = len(pool) // 2
    budget = _Budget(bounds.max_steps)
    left_totals, left_sets = _subset_sums(units[:half], high, budget)
    right_totals, right_sets = _subset_sums(units[half:], high, budget)
    order = sorted(range(len(left_totals)), key=left_totals.__getitem__)
    left_totals = [left_totals[k] for k in order]
    left_sets = [left_sets[k] for k in order]
    found: list[tuple[OpenItem, ...]] = []
    complete = budget.left >= 0
    for right_total, right_set in zip(right_totals, right_sets, strict=True) if complete else ():
        first = bisect_left(left_totals, low - right_total)
        last = bisect_right(left_totals, high - right_total)
        for left_set in left_sets[first:last]:
            if not budget.take():
                complete = False
                break
            chosen = left_set | (right_set << half)
            if chosen.bit_count() >= 2:
                found.append(tuple(item for k, item in enumerate(pool) if chosen >> k & 1))
        if not complete or len(found) > bounds.max_solutions:
            complete = False
            break
    candidates = [
        Candidate(c, "combination", score("combination", amount - _sum(c), tolerance, len(c)))
        for c in found[: bounds.max_solutions]
    ]
    return candidates, complete


class _Budget:
    """Steps left; a search that overdraws it is incomplete."""

    def __init__(self, steps: int) -> None:
        self.left = steps

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


def _units(*amounts: Decimal) -> Callable[[Decimal], int]:
    """Exact integer arithmetic: amounts as multiples of the finest unit among them."""
    places = max(0, *(-int(a.as_tuple().exponent) for a in amounts))
    return lambda a: int(a.scaleb(places))


def _subset_sums(amounts: list[int], ceiling: int, budget: _Budget) -> tuple[list[int], list[int]]:
    """The total and the bit set (of positions in `amounts`) of every subset not above
    `ceiling`: amounts are positive, so a subset above it is part of no answer. Two lists
    of ints rather than pairs, since thousands of small tuples per line would wake the
    garbage collector, which in a worker with a large heap costs more than the search."""
    totals, sets = [0], [0]
    for k, amount in enumerate(amounts):
        bit = 1 << k
        fitting = [n for n, total in enumerate(totals) if total + amount <= ceiling]
        budget.left -= len(fitting)
        if budget.left < 0:
            return [], []
        totals += [totals[n] + amount for n in fitting]
        sets += [sets[n] | bit for n in fitting]
    return totals, sets


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
    return Proposals(tuple(ranked), complete, amount)
