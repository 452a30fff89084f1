"""Account numbers out of the free text the read models copy (docs/read-models.md, "Masked
account numbers").

No read model stores a customer's or a payer's account number (`bank_accounts`,
`counterparty_account`): matching uses them in the worker, the read side has no need. What
the read models do copy is free text people wrote (a resolution's or an assignment's note,
and the timeline's summary that quotes it), where an IBAN may have been pasted; each one is
masked as services/masking.py masks an account number (last four characters visible).
An IBAN is recognised by its shape and its ISO 13616 check digits (mod 97), so that an
order or invoice reference is never taken for one.

Example:
    mask_ibans("refund to DE89 3704 0044 0532 0130 00")  # 'refund to **** **** **** **** **30 00'
"""

from __future__ import annotations

import re

from services.masking import mask_account

# Country code, check digits, then 11 to 30 letters and digits, in groups of four separated
# by single spaces or written together; not inside a longer word.
_IBAN_CANDIDATE = re.compile(
    r"(?<![0-9A-Za-z])[A-Z]{2}[0-9]{2}(?: ?[0-9A-Z]){11,30}(?![0-9A-Za-z])"
)


def iban_valid(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    moved = compact[4:] + compact[:4]
    digits = "".join(str(int(c, 36)) for c in moved)
    return int(digits) % 97 == 1


def mask_ibans(text: str) -> str:
    """`text` with every valid IBAN masked; anything else as it was."""

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        # The longest valid IBAN at the start of the match: a word after it ("… 00 EUR")
        # may have been taken in.
        for end in range(len(found), 14, -1):
            if (end == len(found) or found[end] == " ") and iban_valid(found[:end]):
                return mask_account(found[:end]) + found[end:]
        return found

    return _IBAN_CANDIDATE.sub(replace, text)


def mask_optional(text: str | None) -> str | None:
    return None if text is None else mask_ibans(text)
