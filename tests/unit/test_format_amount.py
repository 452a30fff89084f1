"""format_amount is format(value, "f") made faster: it must write the same text for every
Decimal, with or without an exponent in its own representation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.money import format_amount


@given(st.decimals(allow_nan=True, allow_infinity=True))
def test_format_amount_writes_what_format_f_writes(value: Decimal) -> None:
    assert format_amount(value) == format(value, "f")


@given(st.integers(min_value=-(10**20), max_value=10**20), st.integers(-12, 12))
def test_format_amount_never_writes_an_exponent(digits: int, exponent: int) -> None:
    value = Decimal(digits).scaleb(exponent)
    assert format_amount(value) == format(value, "f")
    assert "E" not in format_amount(value).upper()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1E+2", "100"),
        ("1E-7", "0.0000001"),
        ("-0", "-0"),
        ("-0.00", "-0.00"),
        ("129.90", "129.90"),
        ("0.000001", "0.000001"),
    ],
)
def test_amounts_whose_str_has_an_exponent_are_written_plain(value: str, text: str) -> None:
    assert format_amount(Decimal(value)) == text
