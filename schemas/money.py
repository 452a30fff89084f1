"""Money as Decimal with an ISO 4217 currency, and the rules for how many decimals it may carry."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

# ISO 4217 minor units (list one, 2024 amendment). Codes absent here are not currencies a
# seller invoices in (precious metals, testing codes, funds codes), so they are rejected.
_MINOR_UNITS_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_MINOR_UNITS_3 = "BHD IQD JOD KWD LYD OMR TND"
_MINOR_UNITS_4 = "CLF UYW"
_MINOR_UNITS_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR "
    "FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW "
    "KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN "
    "NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD "
    "SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU "
    "UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL"
)

CURRENCY_DECIMALS: dict[str, int] = {
    **dict.fromkeys(_MINOR_UNITS_2.split(), 2),
    **dict.fromkeys(_MINOR_UNITS_0.split(), 0),
    **dict.fromkeys(_MINOR_UNITS_3.split(), 3),
    **dict.fromkeys(_MINOR_UNITS_4.split(), 4),
}

_DECIMAL_STRING = re.compile(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,6})?")


def currency_decimals(currency: str) -> int:
    """Number of decimals the currency allows; KeyError for a code that is not ISO 4217."""
    return CURRENCY_DECIMALS[currency]


def decimals_of(amount: Decimal) -> int:
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # finite by construction: NaN/Infinity never parse
    return max(0, -exponent)


def _currency_code(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError('must be an ISO 4217 currency code string such as "CNY"')
    if value not in CURRENCY_DECIMALS:
        raise ValueError(f"unknown ISO 4217 currency code {value!r}")
    return value


def _decimal_string(value: object) -> Decimal:
    # Decimals built in Python are accepted as they are; JSON numbers are not, because a
    # float on the wire has already lost the cents somewhere upstream.
    if type(value) is str and _DECIMAL_STRING.fullmatch(value):
        return Decimal(value)  # what every decoded amount is: tested first
    if isinstance(value, Decimal):
        # Built in Python: it must still fit the wire format every consumer parses.
        if not value.is_finite() or not _DECIMAL_STRING.fullmatch(format_amount(value)):
            raise ValueError(
                f"{value} does not fit a decimal string of at most 18 integer digits and 6 decimals"
            )
        return value
    if isinstance(value, (bool, int | float)):
        raise ValueError(
            f'must be a decimal string such as "129.90", not the JSON number {value!r}'
        )
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "129.90"')
    if not _DECIMAL_STRING.fullmatch(value):
        raise ValueError(f'{value!r} is not a decimal string such as "129.90"')
    return Decimal(value)


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


def format_amount(value: Decimal) -> str:
    """The amount as the wire writes it: plain digits, never an exponent.

    What format(value, "f") writes, in a third of the time: str() gives the same digits
    unless it chooses an exponent (1E+2, 1E-7), and the encoder calls this for every
    amount of every output."""
    text = str(value)
    return format(value, "f") if "E" in text else text


# JSON Schema of the wire format, for publishers in other languages (schemas/json/). These
# annotations only describe what the validators above accept; they change no validation.
# JSON Schema `pattern` is not anchored, hence ^ and $ around the regex of _decimal_string.
# (An Amount's pattern has no sign at all, though _non_negative lets "-0" and "-0.00" pass.)
SIGNED_AMOUNT_PATTERN = f"^{_DECIMAL_STRING.pattern}$"
AMOUNT_PATTERN = f"^{_DECIMAL_STRING.pattern.removeprefix('-?')}$"

_CurrencyJsonSchema = WithJsonSchema(
    {
        "type": "string",
        "enum": sorted(CURRENCY_DECIMALS),
        "description": "ISO 4217 currency code",
    }
)
_SignedAmountJsonSchema = WithJsonSchema(
    {
        "type": "string",
        "pattern": SIGNED_AMOUNT_PATTERN,
        "description": 'Decimal string such as "129.90" or "-15.00", never a JSON number',
    }
)
_AmountJsonSchema = WithJsonSchema(
    {
        "type": "string",
        "pattern": AMOUNT_PATTERN,
        "description": 'Non-negative decimal string such as "129.90", never a JSON number',
    }
)

CurrencyCode = Annotated[str, BeforeValidator(_currency_code), _CurrencyJsonSchema]
_AmountSerializer = PlainSerializer(format_amount, return_type=str, when_used="json")
SignedAmount = Annotated[
    Decimal, BeforeValidator(_decimal_string), _AmountSerializer, _SignedAmountJsonSchema
]
Amount = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    AfterValidator(_non_negative),
    _AmountSerializer,
    _AmountJsonSchema,
]
