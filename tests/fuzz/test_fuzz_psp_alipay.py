"""Alipay reports, real ones edited, through `o2c import psp --provider alipay`."""

from __future__ import annotations

from hypothesis import given

from tests.fuzz import seeds, targets
from tests.fuzz.budget import FUZZ, run
from tests.fuzz.mutations import mutated


def test_alipay_reports_parse_or_are_refused_with_a_reason() -> None:
    @FUZZ
    @given(mutated(seeds.psp("alipay")))
    def check(raw: bytes) -> None:
        targets.psp(raw, "alipay")

    run(check)
