"""Who paid: resolving a bank line's counterparty to a customer.

By counterparty account first (exact, after normalisation), then by normalised payer name,
then by fuzzy name similarity above a threshold. The directory is built from the latest
`customer.upserted` of every customer (the compacted `o2c.customers` topic).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from difflib import SequenceMatcher
from typing import Literal

from schemas import events as ev

# Legal-form words that say nothing about who the payer is. Stripped from the end of a
# name, repeatedly ("Acme Holdings Co., Ltd." -> "acme holdings"), after punctuation.
LEGAL_SUFFIXES: tuple[str, ...] = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "株式会社",
    "limited",
    "ltd",
    "llc",
    "llp",
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "company",
    "co",
    "gmbh",
    "ag",
    "kg",
    "ug",
    "plc",
    "sa",
    "sarl",
    "sas",
    "srl",
    "spa",
    "bv",
    "nv",
    "ab",
    "oy",
    "pte",
    "pty",
)
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")
# Suffixes written in Latin letters are whole words; CJK ones are glued to the name.
_LATIN_SUFFIX = re.compile(
    r"(?:\s+(?:" + "|".join(s for s in LEGAL_SUFFIXES if s.isascii()) + r"))+$"
)
_CJK_SUFFIXES = tuple(s for s in LEGAL_SUFFIXES if not s.isascii())


def normalize_name(name: str) -> str:
    """A payer name reduced to what identifies it: case, width, punctuation, spacing and
    legal-form suffixes do not count."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = _PUNCTUATION.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    while True:
        stripped = _without_suffix(text)
        if stripped == text or not stripped:
            return text  # a name that is only a legal form keeps it
        text = stripped


def _without_suffix(text: str) -> str:
    stripped = _LATIN_SUFFIX.sub("", text).strip()
    for suffix in _CJK_SUFFIXES:
        if stripped.endswith(suffix):
            stripped = stripped[: -len(suffix)].strip()
    return stripped


def normalize_account(account: str) -> str:
    """IBANs and account numbers are printed with spaces and dashes in groups."""
    return re.sub(r"[\s\-./]", "", account).upper()


def similarity(a: str, b: str) -> Decimal:
    """Similarity of two normalised names, 0 to 1 (two decimals, so it replays exactly)."""
    ratio = SequenceMatcher(None, a, b, autojunk=False).ratio()
    return Decimal(str(round(ratio, 2)))


PayerHow = Literal["account", "name", "fuzzy"]


@dataclass(frozen=True, slots=True)
class Payer:
    customer_id: str
    how: PayerHow
    confidence: Decimal


@dataclass(frozen=True)
class PayerDirectory:
    by_account: Mapping[str, str] = field(default_factory=dict)
    by_name: Mapping[str, str] = field(default_factory=dict)
    # Names claimed by more than one customer identify nobody.
    shared_names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, customers: Iterable[ev.CustomerUpsertedData]) -> PayerDirectory:
        by_account: dict[str, str] = {}
        owners: dict[str, set[str]] = {}
        for customer in sorted(customers, key=lambda c: c.customer_id):
            for account in customer.bank_accounts:
                by_account.setdefault(normalize_account(account), customer.customer_id)
            for name in (customer.name, *customer.payer_names):
                normalized = normalize_name(name)
                if normalized:
                    owners.setdefault(normalized, set()).add(customer.customer_id)
        by_name = {n: next(iter(ids)) for n, ids in owners.items() if len(ids) == 1}
        shared = frozenset(n for n, ids in owners.items() if len(ids) > 1)
        return cls(by_account, by_name, shared)

    def resolve(self, account: str | None, name: str | None, threshold: Decimal) -> Payer | None:
        if account:
            customer_id = self.by_account.get(normalize_account(account))
            if customer_id is not None:
                return Payer(customer_id, "account", Decimal(1))
        if not name:
            return None
        normalized = normalize_name(name)
        if normalized in self.shared_names:
            return None
        customer_id = self.by_name.get(normalized)
        if customer_id is not None:
            return Payer(customer_id, "name", Decimal("0.95"))
        return self._closest(normalized, threshold)

    def _closest(self, normalized: str, threshold: Decimal) -> Payer | None:
        scored = sorted(
            (
                (similarity(normalized, known), customer_id)
                for known, customer_id in self.by_name.items()
            ),
            key=lambda s: (-s[0], s[1]),
        )
        if not scored or scored[0][0] < threshold:
            return None
        best, customer_id = scored[0]
        rivals = {c for score, c in scored if score == best}
        if len(rivals) > 1:
            return None  # two customers as close as each other: guessing would be wrong
        # A fuzzy resolution is never as sure as a name match.
        return Payer(customer_id, "fuzzy", min(best, Decimal("0.9")))
