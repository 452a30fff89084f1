"""The statement self-check over any declared and parsed figures a parser could hand it:
huge and tiny amounts, odd decimals, counts that disagree. Notes or a refusal, nothing else."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.importers.errors import ImportFailed
from services.importers.statement_check import (
    Balance,
    DeclaredStatement,
    DeclaredSum,
    ParsedStatement,
    check_statements,
)
from tests.fuzz.budget import FUZZ, run

# What the parsers hand over: parse_decimal bounds amounts to 18 integer digits, not their
# decimals.
finite = {"allow_nan": False, "allow_infinity": False}
amounts = st.one_of(
    st.decimals(**finite, min_value=-(10**18) + 1, max_value=10**18 - 1),
    st.decimals(**finite, places=2, min_value=-(10**6), max_value=10**6),
    st.sampled_from([-Decimal("9" * 18), Decimal("1E-999999"), Decimal(0)]),
)
currencies = st.sampled_from(["EUR", "JPY", "BHD", "XXX", ""])
balances = st.builds(Balance, amounts, currencies)
sums = st.builds(
    DeclaredSum, st.just(":90D:"), st.booleans(), st.integers(0, 5), amounts, currencies
)
declared = st.builds(
    DeclaredStatement,
    where=st.just("line 4"),
    name=st.just("statement S1"),
    records=st.integers(0, 5),
    opening=st.none() | balances,
    closing=st.none() | balances,
    sums=st.lists(sums, max_size=2).map(tuple),
)


@st.composite
def parsed(draw: st.DrawFn) -> ParsedStatement:
    d = draw(declared)
    entries = draw(st.lists(amounts, max_size=5))
    records = draw(st.sampled_from([len(entries), d.records]))
    total = sum(entries, Decimal(0)) if draw(st.booleans()) else draw(amounts)
    currencies_of = frozenset(draw(st.lists(currencies, max_size=2)))
    return ParsedStatement(d, records, total, currencies_of, tuple(entries))


def test_statement_check_gives_notes_or_refuses_with_a_reason() -> None:
    @FUZZ
    @given(st.lists(parsed(), min_size=1, max_size=3))
    def check(statements: list[ParsedStatement]) -> None:
        try:
            notes = check_statements("statement.sta", statements)
        except ImportFailed as refusal:
            notes = [refusal.problem]
        assert all(notes), "a refusal or note must say something"

    run(check)
