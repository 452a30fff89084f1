"""Masking what people must not read in full: bank account numbers and IBANs (all but the
last four characters) and payment card numbers (PANs: 13 to 19 digits that pass the Luhn
check) that an upstream system left in a free-text field.

Pure functions over strings, so every place that shows or stores such data (outputs, dead
letters, read models, logs, the CLI) masks the same way.

Example:
    mask_account("NL91 ABNA 0417 1643 00")            # '**** **** **** **43 00'
    mask_card_numbers("paid by 4111 1111 1111 1111")  # ('paid by **** **** **** 1111', 1)
"""

from __future__ import annotations

import re
from collections.abc import Callable

MASK = "*"
# Visible characters at the end of an account number and of a card number: enough for a
# person to tell two of a customer's accounts apart, too few to use (PCI DSS 3.4).
VISIBLE = 4

# A run of 13-19 digits, each pair optionally separated by one space or dash, as people and
# systems write card numbers ("4111111111111111", "4111 1111 1111 1111", "4111-1111-…"),
# not inside a longer run of digits or of letters-and-digits (an IBAN, a reference).
_CARD_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number passes; `digits` only digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def is_card_number(text: str) -> bool:
    """Whether `text` (separators allowed) is 13-19 digits that pass the Luhn check."""
    digits = text.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and digits.isdigit() and luhn_valid(digits)


def mask_card_numbers(text: str) -> tuple[str, int]:
    """`text` with every card number's digits but the last four replaced by `*` (separators
    kept, so the text keeps its shape), and how many were masked. Masked text is left as it
    is by a second pass: `*` is not a digit."""
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        candidate = match.group(0)
        if not is_card_number(candidate):
            return candidate
        count += 1
        return _mask_characters(candidate, str.isdigit)

    masked = _CARD_CANDIDATE.sub(replace, text)
    return masked, count


def contains_card_number(text: str) -> bool:
    return mask_card_numbers(text)[1] > 0


def mask_account(value: str) -> str:
    """An account number or IBAN with all but its last four letters and digits replaced by
    `*`; spaces and other separators are kept. A value of four characters or fewer is masked
    whole: its "last four" would be all of it."""
    return _mask_characters(value, str.isalnum)


def _mask_characters(value: str, counts: Callable[[str], bool]) -> str:
    """`value` with every character `counts` but the last four of them replaced by `*`."""
    positions = [i for i, char in enumerate(value) if counts(char)]
    hidden = set(positions[:-VISIBLE]) if len(positions) > VISIBLE else set(positions)
    return "".join(MASK if i in hidden else char for i, char in enumerate(value))
