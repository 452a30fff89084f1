from __future__ import annotations

from decimal import Decimal

import pytest

from schemas import events as ev
from services.domain.payers import PayerDirectory, normalize_account, normalize_name

THRESHOLD = Decimal("0.85")


def customer(customer_id: str, name: str, **extra: object) -> ev.CustomerUpsertedData:
    return ev.CustomerUpsertedData.model_validate(
        {"customer_id": customer_id, "name": name, **extra}
    )


DIRECTORY = PayerDirectory.of(
    [
        customer("C-ACME", "Acme Trading Ltd.", bank_accounts=["DE89 3704 0044 0532 0130 00"]),
        customer(
            "C-LOTUS", "上海莲花贸易有限公司", payer_names=["Shanghai Lotus Trading Co., Ltd."]
        ),
        customer("C-MUELLER", "Müller Maschinenbau GmbH"),
        customer("C-TWIN-1", "Twin Shop"),
        customer("C-TWIN-2", "TWIN SHOP LLC"),
    ]
)


@pytest.mark.parametrize(
    ("written", "normalized"),
    [
        ("ACME TRADING LTD", "acme trading"),
        ("Acme Trading Ltd.", "acme trading"),
        ("acme   trading,  ltd", "acme trading"),
        ("Acme Trading Co., Ltd.", "acme trading"),
        ("Acme-Trading Limited", "acme trading"),
        ("ＡＣＭＥ Ｔｒａｄｉｎｇ", "acme trading"),  # full-width letters
        ("Müller Maschinenbau GmbH", "müller maschinenbau"),
        ("MÜLLER MASCHINENBAU", "müller maschinenbau"),
        ("上海莲花贸易有限公司", "上海莲花贸易"),
        ("上海莲花贸易股份有限公司", "上海莲花贸易"),
        ("Ltd", "ltd"),  # a name that is only a legal form keeps it
    ],
)
def test_names_normalize_across_case_punctuation_spacing_and_legal_suffixes(
    written: str, normalized: str
) -> None:
    assert normalize_name(written) == normalized


def test_accounts_normalize_across_grouping() -> None:
    assert normalize_account("de89-3704 0044.0532 0130 00") == "DE89370400440532013000"


@pytest.mark.parametrize(
    ("account", "name", "customer_id", "how"),
    [
        ("DE89370400440532013000", None, "C-ACME", "account"),
        ("de89 3704 0044 0532 0130 00", "Someone Else", "C-ACME", "account"),  # account first
        (None, "ACME TRADING CO., LTD.", "C-ACME", "name"),
        (None, "acme trading", "C-ACME", "name"),
        (None, "SHANGHAI LOTUS TRADING CO LTD", "C-LOTUS", "name"),  # a known payer name
        (None, "上海莲花贸易有限公司", "C-LOTUS", "name"),
        (None, "Mueller Maschinenbau GmbH", "C-MUELLER", "fuzzy"),  # ü written as ue
        (None, "Acme Tradng Ltd", "C-ACME", "fuzzy"),  # a typo
    ],
)
def test_payer_resolves_by_account_then_name_then_similarity(
    account: str | None, name: str | None, customer_id: str, how: str
) -> None:
    payer = DIRECTORY.resolve(account, name, THRESHOLD)
    assert payer is not None
    assert (payer.customer_id, payer.how) == (customer_id, how)


@pytest.mark.parametrize(
    ("account", "name"),
    [
        (None, None),
        ("XX00 0000", None),  # an account nobody has
        (None, "Globex Corporation"),  # nobody like it
        (None, "Twin Shop Inc"),  # two customers share the name: guessing would be wrong
    ],
)
def test_unknown_or_ambiguous_payer_resolves_to_nobody(
    account: str | None, name: str | None
) -> None:
    assert DIRECTORY.resolve(account, name, THRESHOLD) is None


def test_fuzzy_resolution_is_less_sure_than_a_name_match() -> None:
    exact = DIRECTORY.resolve(None, "Acme Trading", THRESHOLD)
    fuzzy = DIRECTORY.resolve(None, "Acme Tradng", THRESHOLD)
    assert exact is not None
    assert fuzzy is not None
    assert fuzzy.confidence < exact.confidence < 1


def test_similarity_threshold_is_respected() -> None:
    # "acme tradng" vs "acme trading": similarity 0.96 (two decimals)
    assert DIRECTORY.resolve(None, "Acme Tradng", Decimal("0.96")) is not None
    assert DIRECTORY.resolve(None, "Acme Tradng", Decimal("0.97")) is None
