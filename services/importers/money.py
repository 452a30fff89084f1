"""Reading amounts from files exactly: Decimal from text, never through float."""

from __future__ import annotations

import re
from decimal import Decimal

from schemas.money import CURRENCY_DECIMALS, decimals_of

# What a file may write as an amount: digits with one decimal point, as every bank and PSP
# format here does. Not Decimal's own syntax: "1E+999999999", "NaN" and other scripts' digits
# are no amount a file means, and an exponent that large stalls any arithmetic on it.
_PLAIN = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
# The contract's amounts (schemas/money.py) have at most 18 integer digits.
MAX_INTEGER_DIGITS = 18


def parse_decimal(text: str, decimal_separator: str = ".", thousands: str = "") -> Decimal:
    """'1.234,56' with separators ',' and '.' → Decimal('1234.56'); ValueError if not a number."""
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "")
    if thousands:
        cleaned = cleaned.replace(thousands, "")
    if decimal_separator != ".":
        cleaned = cleaned.replace(decimal_separator, ".")
    cleaned = cleaned.removeprefix("+")
    if not _PLAIN.fullmatch(cleaned):
        raise ValueError(f"{text.strip()!r} is not an amount")
    value = Decimal(cleaned)
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        raise ValueError(
            f"{text.strip()!r} has more than {MAX_INTEGER_DIGITS} integer digits, "
            "more than any amount o2c-matcher takes"
        )
    return value


def fit_currency(value: Decimal, currency: str) -> Decimal:
    """The amount with exactly its currency's decimals; ValueError if that would lose value.

    Reports often pad ("0.78000" CNY) or cut ("380115," EUR) decimals; only trailing zeros
    may go, a real fraction of a minor unit is an error rather than a silent rounding.
    """
    if currency not in CURRENCY_DECIMALS:
        raise ValueError(f"unknown ISO 4217 currency code {currency!r}")
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        # Also what keeps quantize() within Decimal's 28 digits of precision.
        raise ValueError(
            f"{value} has more than {MAX_INTEGER_DIGITS} integer digits, "
            "more than any amount o2c-matcher takes"
        )
    places = CURRENCY_DECIMALS[currency]
    quantized = value.quantize(Decimal(1).scaleb(-places))
    if quantized != value:
        raise ValueError(
            f"{value} has {decimals_of(value.normalize())} decimals but {currency} allows {places}"
        )
    return quantized


def minor_units(units: int, currency: str) -> Decimal:
    """An integer count of minor units (BAI2 amounts) as a Decimal of the currency."""
    return fit_currency(Decimal(units).scaleb(-CURRENCY_DECIMALS[currency]), currency)
