"""A statement checked against itself before anything of it is published.

Each format's scanner reads, from the file's own text and apart from the parser, what every
statement in it declares: how many entry records it holds and, where the format carries
them, its opening and closing balance. The parsed entries must then account for both:
as many entries as records, and opening + entries = closing. A parser that misreads a
layout (one entry where the file holds 39) is caught here whatever it did, and the whole
file is refused with the figures. `--no-balance-check` is the user's explicit way past a
bank's inconsistent balances and totals, never past the entry count: a misread file is
the importer's fault, and importing part of it is what this module exists to prevent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from services.importers.errors import ImportFailed

SKIP_HINT = (
    "Nothing was imported. Ask the bank for a complete, corrected file; if this bank is "
    "known to export inconsistent totals, import it with --no-balance-check"
)


@dataclass(frozen=True)
class Balance:
    amount: Decimal  # signed: a debit balance is negative
    currency: str


@dataclass(frozen=True)
class DeclaredSum:
    """A declared number and sum of one side's entries (MT940/MT942 :90D:, :90C:)."""

    tag: str  # ":90D:"
    debit: bool
    count: int
    amount: Decimal  # unsigned, as written
    currency: str


@dataclass(frozen=True)
class DeclaredStatement:
    """What one statement says about itself, read from the file."""

    where: str  # "line 4", "element BkToCstmrStmt/Stmt[2]"
    name: str  # "statement 940S120301 (account NL91…, number 1/1)"
    records: int  # entry records in the file: :61: lines, <Ntry> elements, 16 records
    opening: Balance | None = None
    closing: Balance | None = None
    opening_tag: str = "opening balance"  # ":60F:", "opening balance (OPBD)"
    closing_tag: str = "closing balance"  # ":62F:", "closing balance (CLBD)"
    sums: tuple[DeclaredSum, ...] = ()


@dataclass(frozen=True)
class ParsedStatement:
    """The entries the parser read for one declared statement."""

    declared: DeclaredStatement
    entries: int  # booked and deliberately skipped (pending) entries
    total: Decimal  # the signed sum of the booked ones
    currencies: frozenset[str] = frozenset()  # of the booked ones
    amounts: tuple[Decimal, ...] = ()  # the booked ones, where a DeclaredSum needs them


def money(value: Decimal, currency: str | None) -> str:
    """1234.5 → '1,234.50 EUR': figures as a finance user reads them."""
    # Not quantize(): it fails beyond Decimal's 28 digits, and a broken file can hold those.
    _sign, digits, exponent = value.as_tuple()
    cents = isinstance(exponent, int) and (exponent >= -2 or not any(digits[exponent + 2 :]))
    text = f"{value:,.2f}" if cents else f"{value:,}"
    return f"{text} {currency}" if currency else text


def count_mismatch(path: str, what: str, in_file: int, parsed: int, where: str = "") -> None:
    if in_file != parsed:
        raise ImportFailed(
            path,
            where,
            f"the file holds {in_file} {what} but the parser read {parsed}: the layout was not "
            f"understood, so nothing was imported (difference {in_file - parsed:+d}). "
            "Please report the file; --no-balance-check does not import a misread file",
        )


def _missing(d: DeclaredStatement) -> str | None:
    """Why the balance check cannot apply to a statement, if it cannot."""
    if d.opening is None and d.closing is None:
        return "no opening or closing balance in the file"
    if d.opening is None:
        return f"no {d.opening_tag} in the file"
    if d.closing is None:
        return f"no {d.closing_tag} in the file"
    return None


def check_statements(path: str, statements: Sequence[ParsedStatement]) -> list[str]:
    """ImportFailed at the first statement that does not add up; else notes for the import
    summary ("3 statements add up", "… the check does not apply: no closing balance")."""
    balanced, summed, without = 0, 0, []
    for s in statements:
        d = s.declared
        count_mismatch(path, f"entries in {d.name}", d.records, s.entries, d.where)
        for declared in d.sums:
            _check_sum(path, d, declared, s.amounts)
            summed += 1
        missing = _missing(d)
        if missing or d.opening is None or d.closing is None:
            if not d.sums:
                without.append(f"{d.name} ({missing})")
            continue
        opening, closing, currency = d.opening.amount, d.closing.amount, d.closing.currency
        others = (s.currencies | {d.opening.currency}) - {currency}
        if others:
            entries = ", ".join(sorted(s.currencies)) or "none"
            raise ImportFailed(
                path,
                d.where,
                f"{d.name} does not add up: {d.opening_tag} "
                f"{money(opening, d.opening.currency)}, entries in {entries}, but "
                f"{d.closing_tag} {money(closing, currency)}: balances and entries must be in "
                f"one currency. {SKIP_HINT}",
            )
        if opening + s.total != closing:
            raise ImportFailed(
                path,
                d.where,
                f"{d.name} does not add up: {d.opening_tag} {money(opening, currency)}"
                f" + entries {money(s.total, currency)} = {money(opening + s.total, currency)},"
                f" but {d.closing_tag} is {money(closing, currency)}"
                f" (difference {money(closing - (opening + s.total), currency)}). {SKIP_HINT}",
            )
        balanced += 1
    notes = []
    if balanced:
        notes.append(
            f"balance check: {balanced} statement{'s add' if balanced != 1 else ' adds'} up "
            "(opening balance + entries = closing balance)"
        )
    if summed:
        notes.append(
            f"entry totals: {summed} number{'s' * (summed != 1)} and sum{'s' * (summed != 1)} "
            "of entries (:90D:/:90C:) agree"
        )
    if without:
        more = f" and {len(without) - 3} more" if len(without) > 3 else ""
        notes.append(
            f"balance check does not apply to {'; '.join(without[:3])}{more}; entries counted"
        )
    return notes


def _check_sum(
    path: str, d: DeclaredStatement, declared: DeclaredSum, amounts: Sequence[Decimal]
) -> None:
    side = [a for a in amounts if (a < 0) == declared.debit and a != 0]
    count, total = len(side), abs(sum(side, Decimal(0)))
    if count != declared.count or total != declared.amount:
        kind = "debit" if declared.debit else "credit"
        raise ImportFailed(
            path,
            d.where,
            f"{d.name} does not add up: {declared.tag} declares {declared.count} {kind} "
            f"entr{'y' if declared.count == 1 else 'ies'} of "
            f"{money(declared.amount, declared.currency)}, but the statement holds {count} of "
            f"{money(total, declared.currency)} "
            f"(difference {money(declared.amount - total, declared.currency)}). {SKIP_HINT}",
        )
