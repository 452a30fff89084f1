"""Reading amounts from files exactly: Decimal from text, never through float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from schemas.money import CURRENCY_DECIMALS, decimals_of


def parse_decimal(text: str, decimal_separator: str = ".", thousands: str = "") -> Decimal:
    """'1.234,56' with separators ',' and '.' → Decimal('1234.56'); ValueError if not a number."""
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "")
    if thousands:
        cleaned = cleaned.replace(thousands, "")
    if decimal_separator != ".":
        cleaned = cleaned.replace(decimal_separator, ".")
    cleaned = cleaned.removeprefix("+")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"{text.strip()!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{text.strip()!r} is not an amount")
    return value


def fit_currency(value: Decimal, currency: str) -> Decimal:
    """The amount with exactly its currency's decimals; ValueError if that would lose value.

    Reports often pad ("0.78000" CNY) or cut ("380115," EUR) decimals; only trailing zeros
    may go, a real fraction of a minor unit is an error rather than a silent rounding.
    """
    if currency not in CURRENCY_DECIMALS:
        raise ValueError(f"unknown ISO 4217 currency code {currency!r}")
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
