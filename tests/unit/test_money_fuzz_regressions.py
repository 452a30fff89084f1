"""Amounts the fuzzers (tests/fuzz/) found breaking the importers' shared money reading and
the statement check's figures, kept as the refusals and texts they now get."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.importers.money import fit_currency, parse_decimal
from services.importers.statement_check import money


@pytest.mark.parametrize(
    "text",
    ["1E+999999999", "1e5", "NaN", "sNaN", "Infinity", "１２", "٣", "1.2.3", "", "-"],
)
def test_what_is_not_digits_with_one_decimal_mark_is_not_an_amount(text: str) -> None:
    # "1E+999999999" was accepted and then stalled or broke quantize() downstream.
    with pytest.raises(ValueError, match="is not an amount"):
        parse_decimal(text)


@pytest.mark.parametrize(("text", "digits"), [("9" * 19, 19), ("1" + "0" * 39 + ".00", 40)])
def test_more_integer_digits_than_the_contract_takes_is_refused(text: str, digits: int) -> None:
    with pytest.raises(ValueError, match="more than 18 integer digits"):
        parse_decimal(text)


def test_fit_currency_refuses_a_value_too_large_rather_than_failing_in_quantize() -> None:
    # decimal.InvalidOperation escaped: quantize() needs more than 28 digits of precision.
    with pytest.raises(ValueError, match="more than 18 integer digits"):
        fit_currency(Decimal("9" * 40), "EUR")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("1234.5", "1,234.50 EUR"),
        ("0.10000", "0.10 EUR"),
        ("0.001", "0.001 EUR"),
        ("1E+40", "10,000,000,000,000,000,000,000,000,000,000,000,000,000.00 EUR"),
        ("1E-999999", "1E-999999 EUR"),
    ],
)
def test_statement_check_figures_are_shown_whatever_their_size(value: str, shown: str) -> None:
    assert money(Decimal(value), "EUR") == shown
