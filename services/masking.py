"""Masking what people must not read in full: bank account numbers and IBANs (all but the
last four characters) and payment card numbers (PANs: 13 to 19 digits that pass the Luhn
check and start as a payment brand's do) that an upstream system left in a free-text field.

Pure functions over strings, so every place that shows or stores such data (outputs, dead
letters, read models, logs, the CLI) masks the same way. Which fields of an event are free
text is declared beside the models (`free_text_fields` in schemas/events.py); the masking of
whole events is services/card_masking.py.

Example:
    mask_account("NL91 ABNA 0417 1643 00")            # '**** **** **** **43 00'
    mask_card_numbers("paid by 4111 1111 1111 1111")  # ('paid by **** **** **** 1111', 1)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

MASK = "*"
# Visible characters at the end of an account number and of a card number: enough for a
# person to tell two of a customer's accounts apart, too few to use (PCI DSS 3.4).
VISIBLE = 4
CARD_DIGITS = (13, 19)

# A run of digit groups separated by one space or dash ("4111 1111 1111 1111", "4111-…",
# "4111111111111111 12/28"), not inside a longer token of letters and digits (an IBAN, a
# reference like ORD4111…). Card numbers are looked for among its whole groups, so a card
# followed by an expiry date or a CVV is still found.
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])\d+(?:[ -]\d+)*(?![0-9A-Za-z])")
_GROUP = re.compile(r"\d+")
# Thirteen digits with at most one separator between two: without them, no card number.
_THIRTEEN_DIGITS = re.compile(r"\d(?:[ -]?\d){12}")

Span = tuple[int, int]


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number passes; `digits` only digits
    (any script's decimal digits: a full-width "４１１１…" is a card number too)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def payment_brand_prefix(digits: str) -> bool:
    """Whether `digits` start as a payment brand's card numbers do (ISO/IEC 7812 issuer
    ranges): 2-6 (Mastercard 2-series and Mir, Amex, JCB, Diners, Visa, Mastercard,
    Maestro, Discover, UnionPay, Elo, Verve…), RuPay's 81 and 82, Troy's 9792. Bank and
    invoice references often start with 0, 1, 7, 8 or 9 and pass Luhn one time in ten
    (three of the sample statements in tests/data have one): they are not taken for cards.
    Not covered: UATP airline cards (1…), which a seller's order-to-cash does not see."""
    first = int(digits[0])
    if 2 <= first <= 6:
        return True
    return len(digits) == 16 and (digits[:2] in ("81", "82") or digits[:4] == "9792")


def is_card_number(text: str) -> bool:
    """Whether `text` (separators allowed) is 13-19 digits that pass the Luhn check and
    start with a payment brand's prefix."""
    digits = text.replace(" ", "").replace("-", "")
    low, high = CARD_DIGITS
    return (
        low <= len(digits) <= high
        and digits.isdecimal()
        and payment_brand_prefix(digits)
        and luhn_valid(digits)
    )


def might_hold_card_number(text: str) -> bool:
    """A cheap first test (one scan in C): False means `text` surely holds none."""
    return len(text) >= CARD_DIGITS[0] and _THIRTEEN_DIGITS.search(text) is not None


def card_number_spans(text: str, keep: Sequence[Span] = ()) -> list[Span]:
    """Where `text` holds card numbers: (start, end) of each run of whole digit groups
    with 13-19 digits that passes Luhn, except one overlapping a `keep` span (an id a
    reference pattern finds there, which matching needs as sent). Overlapping finds are
    all returned: masking each keeps a card hidden however its groups are read."""
    low, high = CARD_DIGITS
    found: list[Span] = []
    if not might_hold_card_number(text):
        return found
    for run in _DIGIT_RUN.finditer(text):
        if len(run[0]) < low:
            continue
        groups = [(run.start() + g.start(), run.start() + g.end()) for g in _GROUP.finditer(run[0])]
        for i, (start, _) in enumerate(groups):
            digits = ""
            for group_start, end in groups[i:]:
                digits += text[group_start:end]
                if len(digits) > high:
                    break
                overlaps_kept = any(start < k_end and k_start < end for k_start, k_end in keep)
                if (
                    len(digits) >= low
                    and not overlaps_kept
                    and payment_brand_prefix(digits)
                    and luhn_valid(digits)
                ):
                    found.append((start, end))
    if found:
        # A spaced IBAN ("NL36 2091 5096 0560 2686 66") is a token and a run of digit
        # groups, and one in seven reads as a card number: it is an account, left for
        # matching as sent (and masked as an account where people read it).
        ibans = iban_spans(text)
        found = [(s, e) for s, e in found if not any(a <= s and e <= b for a, b in ibans)]
    return found


def mask_card_numbers(text: str, keep: Sequence[Span] = ()) -> tuple[str, int]:
    """`text` with every card number's digits but the last four replaced by `*` (separators
    kept, so the text keeps its shape), and how many were masked (overlapping finds count
    once). Masking again changes nothing: `*` is not a digit, and it repeats until no card
    number is left."""
    count = 0
    while True:
        spans = card_number_spans(text, keep)
        if not spans:
            return text, count
        hidden: set[int] = set()
        for start, end in spans:
            digits = [i for i in range(start, end) if text[i].isdecimal()]
            hidden.update(digits[:-VISIBLE])
        count += _clusters(spans)
        text = "".join(MASK if i in hidden else char for i, char in enumerate(text))


def _clusters(spans: Sequence[Span]) -> int:
    """How many groups of overlapping spans there are: one card number read two ways is one."""
    count, reach = 0, -1
    for start, end in sorted(spans):
        if start >= reach:
            count += 1
        reach = max(reach, end)
    return count


def contains_card_number(text: str) -> bool:
    return bool(card_number_spans(text))


# An IBAN: two letters, two check digits and 11-30 letters or digits, written whole or in
# groups of four; only what passes the ISO 13616 mod-97 check is taken for one.
_IBAN_CANDIDATE = re.compile(
    r"(?<![0-9A-Za-z])[A-Z]{2}[0-9]{2}(?: ?[0-9A-Z]{1,4}){3,8}(?![0-9A-Za-z])"
)


def is_iban(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34 or not compact.isalnum() or not compact.isascii():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def iban_spans(text: str) -> list[Span]:
    """Where `text` holds IBANs. A group after an IBAN ("…4300 PAID") is not taken for part
    of it: the longest prefix of whole groups that passes the check is the IBAN."""
    spans: list[Span] = []
    for candidate in _IBAN_CANDIDATE.finditer(text):
        if spans and candidate.start() < spans[-1][1]:
            continue
        value = candidate[0]
        cuts = [m.start() for m in re.finditer(" ", value)] + [len(value)]
        for cut in reversed(cuts):
            if is_iban(value[:cut]):
                spans.append((candidate.start(), candidate.start() + cut))
                break
    return spans


def mask_ibans(text: str) -> str:
    """`text` with every IBAN in it masked as `mask_account` does (for display)."""
    pieces: list[str] = []
    done = 0
    for start, end in iban_spans(text):
        pieces += [text[done:start], mask_account(text[start:end])]
        done = end
    return "".join(pieces) + text[done:]


def mask_for_display(text: str) -> str:
    """Card numbers and IBANs in any text a person reads (a log line, a reason, a value
    whose fields are not known)."""
    return mask_ibans(mask_card_numbers(text)[0])


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
