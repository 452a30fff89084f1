"""For any statement: every entry is published (count and total those of the statement) or
the file is refused; and a statement with one amount or balance corrupted is refused."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import events as ev
from services.importers import ImportFailed, parse_bank


@dataclass(frozen=True)
class Statement:
    opening: int  # cents, signed
    entries: tuple[int, ...]  # cents, signed, never zero

    @property
    def closing(self) -> int:
        return self.opening + sum(self.entries)


statements = st.builds(
    Statement,
    opening=st.integers(-(10**9), 10**9),
    entries=st.lists(
        st.integers(1, 10**8).flatmap(lambda c: st.sampled_from((c, -c))), max_size=12
    ).map(tuple),
)


def _eur(cents: int, mark: str = ",") -> str:
    return f"{abs(cents) // 100}{mark}{abs(cents) % 100:02d}"


def mt940(
    s: Statement, corrupt: int | None = None, number: int = 1, mark: str = ",", end: str = "-"
) -> str:
    lines = [f":20:PROP-{number}", ":25:NL91ABNA0417164300", f":28C:{number}/1"]
    lines.append(f":60F:{'C' if s.opening >= 0 else 'D'}261101EUR{_eur(s.opening, mark)}")
    for n, cents in enumerate(s.entries):
        cents += 1 if n == corrupt else 0
        side = "C" if cents > 0 else "D"
        lines += [f":61:2611021102{side}{_eur(cents, mark)}NTRFNONREF", f":86:ENTRY {n}"]
    closing = s.closing + (1 if corrupt == -1 else 0)
    lines += [f":62F:{'C' if closing >= 0 else 'D'}261102EUR{_eur(closing, mark)}", end]
    return "\n".join(lines) + "\n"


def camt053(s: Statement, corrupt: int | None = None) -> str:
    def amount(cents: int) -> str:
        return f"<Amt Ccy='EUR'>{_eur(cents, '.')}</Amt>"

    def balance(code: str, cents: int) -> str:
        side = "CRDT" if cents >= 0 else "DBIT"
        return (
            f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>{amount(cents)}"
            f"<CdtDbtInd>{side}</CdtDbtInd><Dt><Dt>2026-11-02</Dt></Dt></Bal>"
        )

    entries = "".join(
        f"<Ntry>{amount(c + (1 if n == corrupt else 0))}"
        f"<CdtDbtInd>{'CRDT' if c > 0 else 'DBIT'}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
        "<BookgDt><Dt>2026-11-02</Dt></BookgDt></Ntry>"
        for n, c in enumerate(s.entries)
    )
    closing = s.closing + (1 if corrupt == -1 else 0)
    return (
        "<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'><BkToCstmrStmt>"
        "<Stmt><Id>S1</Id><Acct><Id><IBAN>CH9300762011623852957</IBAN></Id></Acct>"
        f"{balance('OPBD', s.opening)}{balance('CLBD', closing)}{entries}"
        "</Stmt></BkToCstmrStmt></Document>"
    )


def bai2(s: Statement, corrupt: int | None = None) -> str:
    details = [
        f"16,{195 if c > 0 else 495},{abs(c) + (1 if n == corrupt else 0)},,REF{n},,ITEM {n}/"
        for n, c in enumerate(s.entries)
    ]
    closing = s.closing + (1 if corrupt == -1 else 0)
    # Control totals as a bank computes them, from the true amounts.
    total = s.opening + s.closing + sum(abs(c) for c in s.entries)
    records = [
        "01,SENDER,RECEIVER,261102,0600,1,,,2/",
        "02,RECEIVER,SENDER,1,261101,,USD,2/",
        f"03,4001234567,USD,010,{s.opening},,,015,{closing},,/",
        *details,
        f"49,{total},{len(details) + 2}/",
        f"98,{total},1,{len(details) + 4}/",
        f"99,{total},1,{len(details) + 6}/",
    ]
    return "\n".join(records) + "\n"


FORMATS: dict[str, Callable[..., str]] = {"sta": mt940, "xml": camt053, "bai2": bai2}


def _import(text: str, suffix: str) -> list[Decimal] | None:
    """The amounts published, or None if the file was refused."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"statement.{suffix}"
        path.write_text(text, encoding="utf-8")
        try:
            batch = parse_bank(path)
        except ImportFailed:
            return None
    return [e.data.amount for e in batch.events if isinstance(e, ev.BankLineBooked)]


@settings(max_examples=60, deadline=None)
@given(statement=statements, suffix=st.sampled_from(sorted(FORMATS)))
def test_a_statement_is_published_whole_or_refused(statement: Statement, suffix: str) -> None:
    published = _import(FORMATS[suffix](statement), suffix)
    if published is not None:
        assert len(published) == len(statement.entries)
        assert sum(published, Decimal(0)) == Decimal(sum(statement.entries)).scaleb(-2)


@settings(max_examples=60, deadline=None)
@given(statement=statements, suffix=st.sampled_from(sorted(FORMATS)))
def test_a_consistent_statement_is_published(statement: Statement, suffix: str) -> None:
    # Else the property above would hold for an importer that refuses everything.
    assert _import(FORMATS[suffix](statement), suffix) is not None


@settings(max_examples=60, deadline=None)
@given(
    many=st.lists(statements, min_size=1, max_size=5),
    mark=st.sampled_from((",", ".")),
    end=st.sampled_from(("-", "")),
)
def test_an_mt940_file_of_many_statements_is_published_whole(
    many: list[Statement], mark: str, end: str
) -> None:
    # Legacy layouts: "." as decimal mark, no "-" after each statement (issue 18, item 1).
    text = "".join(mt940(s, number=n, mark=mark, end=end) for n, s in enumerate(many, 1))
    published = _import(text, "sta")
    assert published is not None
    assert len(published) == sum(len(s.entries) for s in many)
    assert sum(published, Decimal(0)) == Decimal(sum(sum(s.entries) for s in many)).scaleb(-2)


@settings(max_examples=60, deadline=None)
@given(statement=statements, suffix=st.sampled_from(sorted(FORMATS)), data=st.data())
def test_a_statement_with_one_amount_or_balance_corrupted_is_refused(
    statement: Statement, suffix: str, data: st.DataObject
) -> None:
    # -1 corrupts the closing balance, n >= 0 the amount of entry n (by one cent).
    corrupt = data.draw(st.integers(-1, len(statement.entries) - 1), label="corrupt")
    if corrupt >= 0 and abs(statement.entries[corrupt]) == 1 and statement.entries[corrupt] < 0:
        corrupt = -1  # -0.01 + 0.01 would be a zero entry, not a corrupted one
    assert _import(FORMATS[suffix](statement, corrupt), suffix) is None
