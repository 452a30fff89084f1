from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.domain.candidates import OpenItem, SearchBounds, many_to_one, propose

TOLERANCE = Decimal("0.50")  # CNY, the policy's default
BOUNDS = SearchBounds()
BOOKED = date(2026, 11, 2)


def items(*amounts: str, currency: str = "CNY") -> list[OpenItem]:
    """Open items, oldest first: item n is due n days after the booking date."""
    return [
        OpenItem(f"ORD-{n:02d}", currency, Decimal(a), BOOKED + timedelta(days=n))
        for n, a in enumerate(amounts)
    ]


# amounts in CNY; tolerance 0.50
@pytest.mark.parametrize(
    ("case", "open_items", "line", "expected", "method"),
    [
        ("exact amount", items("100.00", "250.00"), "250.00", ("ORD-01",), "exact_amount"),
        ("one cent under", items("100.00", "250.00"), "249.99", ("ORD-01",), "exact_amount"),
        ("one cent over", items("100.00", "250.00"), "250.01", ("ORD-01",), "exact_amount"),
        ("at the tolerance edge", items("100.00", "250.00"), "249.50", ("ORD-01",), "exact_amount"),
        ("one cent past the edge", items("100.00", "250.00"), "249.49", None, None),
        ("two items make the line", items("100.00", "250.00"), "350.00", ("ORD-00", "ORD-01"),
         "combination"),
        ("no item and no sum", items("100.00", "250.00"), "500.00", None, None),
        ("smaller than every item", items("11.00", "23.00", "37.00"), "1.00", None, None),
    ],
)  # fmt: skip
def test_proposals_at_the_boundaries(
    case: str,
    open_items: list[OpenItem],
    line: str,
    expected: tuple[str, ...] | None,
    method: str | None,
) -> None:
    proposals = propose(open_items, Decimal(line), "CNY", BOOKED, TOLERANCE, BOUNDS)
    unique = proposals.unique
    if expected is None:
        assert proposals.candidates == (), case
        return
    assert unique is not None, case
    assert (unique.order_ids, unique.method) == (expected, method), case


def test_a_combination_of_3_out_of_10_open_items_is_found() -> None:
    # Amounts whose subset sums are all different: only ORD-01 + ORD-04 + ORD-08 make 173.
    ten = items("11.00", "23.00", "37.00", "41.00", "53.00", "67.00", "79.00", "83.00", "97.00",
                "101.00")  # fmt: skip
    line = Decimal("23.00") + Decimal("53.00") + Decimal("97.00")
    proposals = propose(ten, line, "CNY", BOOKED, Decimal(0), BOUNDS)
    sums = [c.total for c in proposals.candidates]
    assert all(s == line for s in sums)
    assert ("ORD-01", "ORD-04", "ORD-08") in [c.order_ids for c in proposals.candidates]


def test_two_open_items_of_equal_amount_are_ambiguous_with_both_suggested() -> None:
    proposals = propose(items("80.00", "80.00"), Decimal("80.00"), "CNY", BOOKED, TOLERANCE, BOUNDS)
    assert proposals.unique is None
    assert [c.order_ids for c in proposals.candidates] == [("ORD-00",), ("ORD-01",)]
    assert proposals.candidates[0].confidence == proposals.candidates[1].confidence


def test_ranking_prefers_the_exact_sum_then_the_oldest() -> None:
    proposals = propose(
        items("80.00", "79.80", "80.00"), Decimal("80.00"), "CNY", BOOKED, TOLERANCE, BOUNDS
    )
    ranked = [c.order_ids for c in proposals.candidates]
    assert ranked == [("ORD-00",), ("ORD-02",), ("ORD-01",)]
    assert proposals.candidates[0].confidence > proposals.candidates[2].confidence


def test_exact_amounts_win_over_combinations() -> None:
    proposals = propose(items("30.00", "70.00", "100.00"), Decimal("100.00"), "CNY", BOOKED,
                        Decimal(0), BOUNDS)  # fmt: skip
    assert proposals.unique is not None
    assert proposals.unique.order_ids == ("ORD-02",)


def test_the_one_item_of_the_exact_amount_wins_over_one_within_tolerance() -> None:
    # Seen in the 1M-order run: a line of 100078.20, open items of 100078.20 and 100078.40.
    proposals = propose(items("100078.40", "100078.20"), Decimal("100078.20"), "CNY", BOOKED,
                        TOLERANCE, BOUNDS)  # fmt: skip
    assert proposals.unique is not None
    assert proposals.unique.order_ids == ("ORD-01",)
    assert len(proposals.candidates) == 2  # the other stays a suggestion


def test_the_one_combination_adding_up_to_the_cent_wins_over_ones_within_tolerance() -> None:
    proposals = propose(items("60.00", "40.00", "39.80", "20.00", "80.10"), Decimal("100.00"),
                        "CNY", BOOKED, TOLERANCE, BOUNDS)  # fmt: skip
    assert proposals.unique is not None
    assert proposals.unique.order_ids == ("ORD-00", "ORD-01")
    assert len(proposals.candidates) == 4  # 60 + 39.80, 20 + 80.10, 60 + 20 + ... stay


def test_two_combinations_adding_up_to_the_cent_stay_ambiguous() -> None:
    proposals = propose(items("60.00", "40.00", "70.00", "30.00"), Decimal("100.00"), "CNY",
                        BOOKED, TOLERANCE, BOUNDS)  # fmt: skip
    assert proposals.complete
    assert proposals.unique is None
    assert {c.order_ids for c in proposals.candidates} == {
        ("ORD-00", "ORD-01"),
        ("ORD-02", "ORD-03"),
    }


def test_a_combination_among_20_b2b_sized_items_is_found_complete_and_unique() -> None:
    # Seen in the 1M-order run: a B2B customer with 20 open invoices of 1,000-110,000 paid
    # 3 of them in one line; a search that tried sets one by one ran out of steps, so the
    # line was AMBIGUOUS with the right answer as its only suggestion.
    twenty = items("37148.70", "17400.00", "85781.00", "5284.30", "24136.30", "3622.00",
                   "107301.20", "26478.00", "41111.20", "28518.70", "6145.00", "62203.10",
                   "12811.50", "1941.00", "54333.84", "23727.60", "8011.00", "13987.00",
                   "56136.10", "65345.90")  # fmt: skip
    line = Decimal("37148.70") + Decimal("17400.00") + Decimal("85781.00")
    proposals = propose(twenty, line, "CNY", BOOKED, TOLERANCE, BOUNDS)
    assert proposals.complete
    assert proposals.unique is not None
    assert proposals.unique.order_ids == ("ORD-00", "ORD-01", "ORD-02")


cents = st.integers(min_value=1, max_value=50_000).map(lambda n: Decimal(n).scaleb(-2))


@settings(max_examples=300, deadline=None)
@given(
    amounts=st.lists(cents, min_size=2, max_size=12),
    picked=st.lists(st.integers(min_value=0, max_value=11), min_size=2, max_size=4),
    shift=st.sampled_from(["0", "0.01", "-0.50", "0.49", "3.00"]),
    tolerance=st.sampled_from(["0", "0.50"]),
)
def test_the_combination_search_finds_exactly_the_sets_a_full_enumeration_finds(
    amounts: list[Decimal], picked: list[int], shift: str, tolerance: str
) -> None:
    pool = items(*(str(a) for a in amounts))
    line = sum((amounts[k % len(amounts)] for k in set(picked)), Decimal(0)) + Decimal(shift)
    slack = Decimal(tolerance)
    bounds = SearchBounds(max_solutions=10_000, max_steps=10**6)

    found, complete = many_to_one(pool, line, slack, bounds)

    everything = {
        tuple(i.order_id for i in chosen)
        for size in range(2, len(pool) + 1)
        for chosen in combinations(pool, size)
        if abs(sum((i.open_amount for i in chosen), Decimal(0)) - line) <= slack
    }
    assert complete
    assert {c.order_ids for c in found} == everything


def test_items_in_another_currency_or_outside_the_window_are_not_candidates() -> None:
    far = OpenItem("ORD-FAR", "CNY", Decimal("50.00"), BOOKED + timedelta(days=121))
    foreign = OpenItem("ORD-USD", "USD", Decimal("50.00"), BOOKED)
    proposals = propose([far, foreign], Decimal("50.00"), "CNY", BOOKED, TOLERANCE, BOUNDS)
    assert proposals.candidates == ()


def test_payer_confidence_scales_every_proposal() -> None:
    sure = propose(items("10.00"), Decimal("10.00"), "CNY", BOOKED, TOLERANCE, BOUNDS)
    fuzzy = propose(items("10.00"), Decimal("10.00"), "CNY", BOOKED, TOLERANCE, BOUNDS,
                    Decimal("0.5"))  # fmt: skip
    assert fuzzy.candidates[0].confidence == (sure.candidates[0].confidence / 2).quantize(
        Decimal("0.01")
    )


def test_only_the_oldest_max_items_are_searched() -> None:
    # 25 items; the two that make the line are the 21st and 22nd oldest.
    many = items(*(["1000.00"] * 20 + ["1.00", "2.00", "5.00", "5.00", "5.00"]))
    found, _complete = many_to_one(many, Decimal("3.00"), Decimal(0), SearchBounds(max_items=20))
    assert found == []
    found, _complete = many_to_one(many, Decimal("3.00"), Decimal(0), SearchBounds(max_items=25))
    assert [c.order_ids for c in found] == [("ORD-20", "ORD-21")]


def test_search_that_runs_out_of_steps_says_so_and_answers_nothing_unique() -> None:
    # 20 items of 1.00: C(20, 10) ways to make 10.00 and many more sets to try.
    crowd = items(*(["1.00"] * 20))
    proposals = propose(crowd, Decimal("10.00"), "CNY", BOOKED, Decimal(0),
                        SearchBounds(max_steps=50))  # fmt: skip
    assert not proposals.complete
    assert proposals.unique is None


@pytest.mark.parametrize(
    "amounts",
    [
        # worst cases for the default bounds (20 items, 20,000 steps): nothing adds up,
        # so the search cannot stop early on finding enough answers.
        [f"{n}.01" for n in range(100, 120)],
        ["1.00"] * 19 + ["0.01"],
    ],
)
def test_one_line_takes_less_than_50_ms_at_the_default_bounds(amounts: list[str]) -> None:
    pool = items(*amounts)
    line = Decimal("999.995")  # reachable by no subset
    started = time.perf_counter()
    propose(pool, line, "CNY", BOOKED, Decimal("0.001"), BOUNDS)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.05, f"{elapsed * 1000:.1f} ms"
