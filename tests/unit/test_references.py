from __future__ import annotations

import pytest

from services.domain.references import ReferencePatterns

PATTERNS = ReferencePatterns()


@pytest.mark.parametrize(
    ("text", "order_id"),
    [
        ("ORD-10023", "ORD-10023"),
        ("Payment for ORD-10023, thanks", "ORD-10023"),
        ("order no. A77812", "A77812"),
        ("Order #B-2231 invoice", "B-2231"),
        ("订单号：88123901", "88123901"),
        ("salary November", None),
        ("", None),
        (None, None),
    ],
)
def test_order_id_is_found_in_common_reference_forms(
    text: str | None, order_id: str | None
) -> None:
    assert PATTERNS.order_id(text) == order_id


def test_first_text_that_names_an_order_wins() -> None:
    assert PATTERNS.order_id(None, "nothing here", "ORD-7 and ORD-8") == "ORD-7"


def test_configured_pattern_without_a_group_is_refused() -> None:
    with pytest.raises(ValueError, match="capturing group"):
        ReferencePatterns([r"INV-\d+"])
