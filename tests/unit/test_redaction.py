"""IBANs in the free text the read models copy are masked; other text is left alone."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from projections.redaction import iban_valid, mask_ibans, mask_optional
from projections.timeline import summary
from tests.factories import event


def with_check_digits(country: str, bban: str) -> str:
    """The IBAN of `country` and `bban` with its ISO 13616 check digits."""
    moved = bban + country + "00"
    remainder = int("".join(str(int(c, 36)) for c in moved)) % 97
    return f"{country}{98 - remainder:02d}{bban}"


ibans = st.builds(
    with_check_digits,
    st.sampled_from(["DE", "GB", "NL", "FR", "CN"]),
    st.text(alphabet="0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=11, max_size=30),
)


def test_a_known_iban_is_valid_and_a_wrong_check_digit_is_not() -> None:
    assert iban_valid("DE89 3704 0044 0532 0130 00")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("DE88 3704 0044 0532 0130 00")


def test_an_iban_in_a_note_keeps_only_its_last_four_characters() -> None:
    assert mask_ibans("refund to DE89 3704 0044 0532 0130 00 EUR, thanks") == (
        "refund to **** **** **** **** **30 00 EUR, thanks"
    )
    assert mask_ibans("GB82WEST12345698765432.") == "******************5432."


@given(iban=ibans, before=st.sampled_from(["", "paid from ", "IBAN: "]))
def test_every_valid_iban_is_masked_and_masking_twice_changes_nothing(
    iban: str, before: str
) -> None:
    masked = mask_ibans(f"{before}{iban} ok")
    assert iban not in masked
    assert masked.endswith(f"{iban[-4:]} ok")
    assert mask_ibans(masked) == masked


@given(st.text(alphabet="ABCDEFGHIJ0123456789 -:", max_size=60))
def test_text_without_a_valid_iban_is_unchanged(text: str) -> None:
    if not any(
        iban_valid(text[i:j]) for i in range(len(text)) for j in range(i + 15, len(text) + 1)
    ):
        assert mask_ibans(text) == text


def test_references_that_look_like_accounts_are_kept() -> None:
    text = "ORD-20261201-0001 paid via ALIPAY2026120112345678 line ACC-CNY-1:20261201:ab12"
    assert mask_ibans(text) == text
    assert mask_optional(None) is None


def test_the_timeline_summary_masks_an_iban_in_a_note() -> None:
    resolved = event(
        "mismatch.resolved",
        {"mismatch_id": "MM-1", "resolution": "manual", "note": "sent to NL91ABNA0417164300"},
    )
    assert "NL91ABNA0417164300" not in summary(resolved)
    assert "**************4300" in summary(resolved)
