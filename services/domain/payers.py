"""Who paid: resolving a bank line's counterparty to a customer.

By counterparty account first (exact, after normalisation), then by normalised payer name,
then by fuzzy name similarity above a threshold. The directory is built from the latest
`customer.upserted` of every customer (the compacted `o2c.customers` topic).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


class PayerDirectory:
    """Accounts and names of every customer, kept up to date one customer at a time: in a
    worker customers keep arriving (a retail shop has hundreds of thousands), and
    rebuilding the directory from all of them for each change would dominate routing.

    Resolutions are a function of the current customers only, whatever order they were
    upserted in: an account two customers claim goes to the smallest customer id; a name
    two customers claim identifies nobody."""

    def __init__(self) -> None:
        # customer id -> (accounts, names), sorted tuples: a retail shop has hundreds of
        # thousands of customers, and a tuple is a quarter of a frozenset's size.
        self._known: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._account_owners: dict[str, set[str]] = {}
        self._name_owners: dict[str, set[str]] = {}
        self.by_name: dict[str, str] = {}  # the names exactly one customer claims
        self._fuzzy: dict[tuple[str, Decimal], Payer | None] = {}

    @classmethod
    def of(cls, customers: Iterable[ev.CustomerUpsertedData]) -> PayerDirectory:
        directory = cls()
        for customer in customers:
            directory.upsert(customer)
        return directory

    def upsert(self, customer: ev.CustomerUpsertedData) -> None:
        accounts = tuple(sorted({normalize_account(a) for a in customer.bank_accounts}))
        names = tuple(
            sorted(
                {
                    n
                    for n in (normalize_name(x) for x in (customer.name, *customer.payer_names))
                    if n
                }
            )
        )
        if self._known.get(customer.customer_id) == (accounts, names):
            return
        self.remove(customer.customer_id)
        self._known[customer.customer_id] = (accounts, names)
        for account in accounts:
            self._account_owners.setdefault(account, set()).add(customer.customer_id)
        for name in names:
            self._name_owners.setdefault(name, set()).add(customer.customer_id)
            self._refresh(name)
        self._fuzzy.clear()

    def remove(self, customer_id: str) -> None:
        known = self._known.pop(customer_id, None)
        if known is None:
            return
        accounts, names = known
        for account in accounts:
            _disown(self._account_owners, account, customer_id)
        for name in names:
            _disown(self._name_owners, name, customer_id)
            self._refresh(name)
        self._fuzzy.clear()

    def _refresh(self, name: str) -> None:
        owners = self._name_owners.get(name)
        if owners is not None and len(owners) == 1:
            self.by_name[name] = next(iter(owners))
        else:
            self.by_name.pop(name, None)

    def resolve(self, account: str | None, name: str | None, threshold: Decimal) -> Payer | None:
        if account:
            owners = self._account_owners.get(normalize_account(account))
            if owners:
                return Payer(min(owners), "account", Decimal(1))
        if not name:
            return None
        normalized = normalize_name(name)
        if len(self._name_owners.get(normalized, ())) > 1:
            return None  # a name two customers claim identifies nobody
        customer_id = self.by_name.get(normalized)
        if customer_id is not None:
            return Payer(customer_id, "name", Decimal("0.95"))
        return self._closest(normalized, threshold)

    def _closest(self, normalized: str, threshold: Decimal) -> Payer | None:
        key = (normalized, threshold)
        if key in self._fuzzy:
            return self._fuzzy[key]
        if len(self._fuzzy) >= FUZZY_MEMO:
            self._fuzzy.clear()
        found = self._fuzzy[key] = closest(normalized, self.by_name, threshold)
        return found


def _disown(owners: dict[str, set[str]], key: str, customer_id: str) -> None:
    claimed = owners.get(key)
    if claimed is not None:
        claimed.discard(customer_id)
        if not claimed:
            del owners[key]


# Fuzzy resolutions remembered per directory: the same unknown payer pays again and again.
FUZZY_MEMO = 10_000
# A ratio this far below the threshold cannot round up to it (similarity keeps two decimals).
_ROUNDING = 0.01


def closest(normalized: str, by_name: Mapping[str, str], threshold: Decimal) -> Payer | None:
    """The one customer whose name is most similar to `normalized`, at least `threshold`.

    Names whose cheap upper bounds on the ratio (lengths, then shared characters) fall
    short of the threshold are not scored: they could be neither the best nor its rival,
    so the answer is the same as scoring every name, at a fraction of the cost."""
    floor = float(threshold) - _ROUNDING
    length = len(normalized)
    scored = []
    for known, customer_id in by_name.items():
        if 2 * min(length, len(known)) / ((length + len(known)) or 1) < floor:
            continue
        matcher = SequenceMatcher(None, normalized, known, autojunk=False)
        if matcher.quick_ratio() < floor:
            continue
        scored.append((Decimal(str(round(matcher.ratio(), 2))), customer_id))
    scored.sort(key=lambda s: (-s[0], s[1]))
    if not scored or scored[0][0] < threshold:
        return None
    best, customer_id = scored[0]
    rivals = {c for score, c in scored if score == best}
    if len(rivals) > 1:
        return None  # two customers as close as each other: guessing would be wrong
    # A fuzzy resolution is never as sure as a name match.
    return Payer(customer_id, "fuzzy", min(best, Decimal("0.9")))
