"""MT940/MT942 files, real ones edited, through `o2c import bank`: parsed or refused."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import seeds, targets
from tests.fuzz.budget import FUZZ, run
from tests.fuzz.mutations import mutated


def test_mt940_statements_parse_or_are_refused_with_a_reason() -> None:
    @FUZZ
    @given(mutated(seeds.mt940()), st.sampled_from([None, "mt940"]), st.booleans())
    def check(raw: bytes, format: str | None, balance_check: bool) -> None:
        targets.bank(raw, format, balance_check=balance_check)

    run(check)


def test_mt942_interim_reports_parse_or_are_refused_with_a_reason() -> None:
    @FUZZ
    @given(mutated(seeds.mt942()), st.sampled_from([None, "mt942"]), st.booleans())
    def check(raw: bytes, format: str | None, balance_check: bool) -> None:
        targets.bank(raw, format, balance_check=balance_check)

    run(check)
