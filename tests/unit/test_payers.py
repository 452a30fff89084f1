from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import events as ev
from services.domain.payers import (
    Payer,
    PayerDirectory,
    closest,
    normalize_account,
    normalize_name,
    similarity,
)

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


def _score_every_name(normalized: str, by_name: dict[str, str], threshold: Decimal) -> object:
    """The fuzzy resolution by scoring every known name: what `closest` must equal."""
    scored = sorted(
        ((similarity(normalized, known), c) for known, c in by_name.items()),
        key=lambda s: (-s[0], s[1]),
    )
    if not scored or scored[0][0] < threshold:
        return None
    best, customer_id = scored[0]
    if len({c for score, c in scored if score == best}) > 1:
        return None
    return Payer(customer_id, "fuzzy", min(best, Decimal("0.9")))


_names = st.text(alphabet="abcde 公司", min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    query=_names,
    known=st.dictionaries(_names, st.sampled_from(["C1", "C2", "C3"]), max_size=8),
    threshold=st.sampled_from([Decimal("0.5"), Decimal("0.7"), Decimal("0.85"), Decimal(1)]),
)
def test_fuzzy_payer_skips_hopeless_names_without_changing_the_answer(
    query: str, known: dict[str, str], threshold: Decimal
) -> None:
    assert closest(query, known, threshold) == _score_every_name(query, known, threshold)


_ids = st.sampled_from(["C1", "C2", "C3", "C4"])
_short_names = st.sampled_from(["acme", "acme ltd", "lotus", "lotos", "twin shop", "莲花"])
_accounts = st.sampled_from(["A1", "A2", "A3"])
# A change to the customer directory: an upsert (id, name, payer names, accounts) or a
# removal (id, None, …), as the compacted topic delivers them.
_changes = st.lists(
    st.tuples(
        _ids,
        st.one_of(st.none(), _short_names),
        st.lists(_short_names, max_size=2),
        st.lists(_accounts, max_size=2),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(changes=_changes)
def test_directory_updated_one_customer_at_a_time_resolves_as_one_built_at_once(
    changes: list[tuple[str, str | None, list[str], list[str]]],
) -> None:
    incremental = PayerDirectory()
    final: dict[str, ev.CustomerUpsertedData] = {}
    for customer_id, name, payer_names, accounts in changes:
        if name is None:
            incremental.remove(customer_id)
            final.pop(customer_id, None)
            continue
        data = customer(customer_id, name, payer_names=payer_names, bank_accounts=accounts)
        incremental.upsert(data)
        final[customer_id] = data
    at_once = PayerDirectory.of(sorted(final.values(), key=lambda c: c.customer_id))

    for account in (None, "A1", "A2", "A3", "A9"):
        for name in ("acme", "ACME Ltd.", "lotus co", "lotu", "twin shop", "莲花", "nobody"):
            assert incremental.resolve(account, name, Decimal("0.7")) == at_once.resolve(
                account, name, Decimal("0.7")
            ), (account, name)
