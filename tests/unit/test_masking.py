"""Account and card numbers are masked the same way wherever people look."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.masking import (
    contains_card_number,
    is_card_number,
    is_iban,
    luhn_valid,
    mask_account,
    mask_card_numbers,
    mask_for_display,
    mask_ibans,
    payment_brand_prefix,
)

# Public test numbers of the card schemes (never issued to anyone).
TEST_CARDS = ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"]


# Card number bodies: a payment brand's first digit (2-6), then 11-17 more digits.
CARD_BODIES = st.builds(
    str.__add__, st.sampled_from("23456"), st.text(alphabet="0123456789", min_size=11, max_size=17)
)


def _with_check_digit(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def test_an_iban_shows_only_its_last_four_characters_and_keeps_its_spaces() -> None:
    assert mask_account("NL91 ABNA 0417 1643 00") == "**** **** **** **43 00"
    assert mask_account("NL91ABNA0417164300") == "**************4300"


def test_an_account_number_of_four_characters_or_fewer_is_masked_whole() -> None:
    assert mask_account("1234") == "****"
    assert mask_account("") == ""


def test_the_schemes_test_numbers_pass_the_luhn_check_and_a_changed_digit_does_not() -> None:
    for card in TEST_CARDS:
        assert luhn_valid(card)
        assert not luhn_valid(card[:-1] + str((int(card[-1]) + 1) % 10))


def test_a_card_number_in_free_text_is_masked_to_its_last_four_digits() -> None:
    text = "refund to card 4111 1111 1111 1111, see ticket 42"
    assert mask_card_numbers(text) == ("refund to card **** **** **** 1111, see ticket 42", 1)
    assert mask_card_numbers("4111-1111-1111-1111") == ("****-****-****-1111", 1)
    assert mask_card_numbers("amex 378282246310005.") == ("amex ***********0005.", 1)


def test_digits_that_fail_luhn_or_sit_inside_an_iban_or_a_longer_number_are_left() -> None:
    for text in [
        "4111111111111112",  # fails Luhn
        "NL914111111111111111",  # inside an IBAN-like token
        "41111111111111110000",  # 20 digits: not a card number
        "order 411111111111",  # 12 digits
    ]:
        assert mask_card_numbers(text) == (text, 0)


@given(
    CARD_BODIES,
    st.text(alphabet="abc .,:", max_size=8),
    st.text(alphabet="xyz .,:", max_size=8),
)
def test_every_luhn_valid_13_to_19_digit_number_is_masked_and_masking_twice_changes_nothing(
    body: str, before: str, after: str
) -> None:
    card = _with_check_digit(body)
    text = f"{before} {card} {after}"
    masked, count = mask_card_numbers(text)
    assert count == 1
    assert card not in masked
    assert masked.count("*") == len(card) - 4
    assert masked.endswith(f"{card[-4:]} {after}")
    assert not contains_card_number(masked)
    assert mask_card_numbers(masked) == (masked, 0)


@given(st.text(alphabet="0123456789 -", max_size=25))
def test_is_card_number_agrees_with_its_definition(text: str) -> None:
    digits = text.replace(" ", "").replace("-", "")
    expected = 13 <= len(digits) <= 19 and payment_brand_prefix(digits) and luhn_valid(digits)
    assert is_card_number(text) == expected


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # A card followed by its expiry date or CVV: the groups after it are not taken
        # for part of it (a greedy reading of 18 digits fails Luhn and left it in full).
        ("4111 1111 1111 1111 12/28", "**** **** **** 1111 12/28"),
        ("card 4111111111111111 5", "card ************1111 5"),
        ("1-4111111111111111", "1-************1111"),
        ("卡号４１１１１１１１１１１１１１１１", "卡号************１１１１"),  # full-width digits
    ],
)
def test_a_card_number_beside_other_digit_groups_is_still_masked(text: str, masked: str) -> None:
    assert mask_card_numbers(text) == (masked, 1)


def test_a_kept_span_leaves_the_card_number_it_overlaps() -> None:
    text = "ORD-4111111111111111 and 5555555555554444"
    assert mask_card_numbers(text, keep=[(0, 20)]) == (
        "ORD-4111111111111111 and ************4444",
        1,
    )


@given(
    st.lists(st.integers(0, 10**6).map(str), max_size=3),
    CARD_BODIES,
    st.lists(st.integers(0, 10**6).map(str), max_size=3),
)
def test_a_card_number_among_other_numbers_never_shows_more_than_four_digits(
    before: list[str], body: str, after: list[str]
) -> None:
    card = _with_check_digit(body)
    masked, count = mask_card_numbers(" ".join([*before, card, *after]))
    assert count >= 1
    shown = masked.split(" ")[len(before)]
    assert shown.count("*") >= len(card) - 4
    assert mask_card_numbers(masked) == (masked, 0)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("from NL91 ABNA 0417 1643 00 PAID", "from **** **** **** **43 00 PAID"),
        ("DE89370400440532013000.", "******************3000."),
        ("NL91 ABNA 0417 1643 01", "NL91 ABNA 0417 1643 01"),  # fails the mod-97 check
        ("PO-2026-11-02", "PO-2026-11-02"),
    ],
)
def test_ibans_in_text_are_masked_to_their_last_four_when_they_pass_mod_97(
    text: str, masked: str
) -> None:
    assert mask_ibans(text) == masked
    assert is_iban("GB82 WEST 1234 5698 7654 32")


def _iban(country: str, bban: str) -> str:
    remainder = int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    return f"{country}{98 - remainder:02d}{bban}"


def _spaced(iban: str) -> str:
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def test_a_spaced_iban_whose_digit_groups_pass_luhn_is_an_account_not_a_card() -> None:
    # "2091 5096 0560 2686 66" is 18 digits from a brand's 2 that pass Luhn.
    text = "refund to NL36 2091 5096 0560 2686 66 instead"
    assert mask_card_numbers(text) == (text, 0)
    assert mask_for_display(text) == "refund to **** **** **** **** **86 66 instead"
    with_card = "NL36 2091 5096 0560 2686 66, card 4111 1111 1111 1111"
    assert mask_card_numbers(with_card) == (
        "NL36 2091 5096 0560 2686 66, card **** **** **** 1111",
        1,
    )


@given(
    st.sampled_from(["NL", "DE", "FR", "GB", "BE"]),
    st.text(alphabet="0123456789", min_size=14, max_size=22),
    st.booleans(),
)
def test_a_valid_iban_is_never_read_as_a_card_and_shows_its_last_four_characters(
    country: str, bban: str, spaced: bool
) -> None:
    iban = _iban(country, bban)
    written = _spaced(iban) if spaced else iban
    text = f"refund to {written} instead"
    assert mask_card_numbers(text) == (text, 0)
    assert mask_for_display(text) == f"refund to {mask_account(written)} instead"


@pytest.mark.parametrize(
    "text",
    [
        # References from the sample statements in tests/data that pass Luhn by chance.
        "12160475 0050001631430920 ORDER",
        "BETALINGSKENM.  173787046000009",
        "FACTUUR * 173787046 000009",
        "TNR: 179301073844398.000001",
        "ref 7000000000000005",  # 7: petroleum cards, not a payment brand
    ],
)
def test_a_luhn_valid_reference_without_a_payment_brands_prefix_is_left(text: str) -> None:
    assert mask_card_numbers(text) == (text, 0)


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("2221000000000009", "Mastercard 2-series"),
        ("6200000000000005", "UnionPay"),
        ("8100000000000008", "RuPay 81"),
        ("9792000000000001", "Troy"),
    ],
)
def test_payment_brands_beyond_the_big_four_are_card_numbers(number: str, brand: str) -> None:
    card = _with_check_digit(number[:-1])
    assert is_card_number(card), brand
