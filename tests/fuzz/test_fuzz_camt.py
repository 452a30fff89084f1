"""camt.052/053/054 XML, real messages edited, through `o2c import bank`: parsed or refused."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import seeds, targets
from tests.fuzz.budget import FUZZ, run
from tests.fuzz.mutations import mutated


def test_camt_messages_parse_or_are_refused_with_a_reason() -> None:
    @FUZZ
    @given(
        mutated(seeds.camt()),
        st.sampled_from([None, "camt052", "camt053", "camt054"]),
        st.booleans(),
    )
    def check(raw: bytes, format: str | None, balance_check: bool) -> None:
        targets.bank(raw, format, balance_check=balance_check)

    run(check)
