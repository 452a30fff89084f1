"""MT940 inputs the fuzzer (tests/fuzz/test_fuzz_swift_mt.py) found breaking the importer,
kept as the refusals they now get."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.importers import ImportFailed, parse_bank

STATEMENT = """:20:STMT-1
:25:NL91ABNA0417164300
:28C:7/1
:60F:C261101EUR1000,00
:61:2611011101C250,00NTRFORD-1001//B1
:86:Payment ORD-1001 Ann
:90C:1EUR250,00
:62F:C261101EUR1250,00
-
"""


# `mt-940` matches amounts as any run of digits and commas (none at all in a balance or
# :34F:) and then raised decimal.InvalidOperation, which escaped `o2c import` as a traceback.
# Its patterns' "\\d" takes other scripts' digits, its balances' "[0-9]" does not.
@pytest.mark.parametrize(
    ("written", "edited", "line", "tag"),
    [
        ("C250,00NTRF", "C2,50,00NTRF", 5, ":61:"),
        ("C250,00NTRF", "C,NTRF", 5, ":61:"),
        ("EUR1000,00", "EUR1,000,00", 4, ":60F:"),
        ("EUR1000,00", "EUR", 4, ":60F:"),
        ("EUR1250,00", "EUR١٢", 8, ":62F:"),  # Arabic-Indic digits: `mt-940` reads none
        ("1EUR250,00", "1EUR2,5,0", 7, ":90C:"),
        # `mt-940` backtracks to number "", currency "199" and amount ",".
        ("1EUR250,00", "199,EUR250,00", 7, ":90C:"),
        (":28C:7/1", ":28C:7/1\n:34F:EUR", 4, ":34F:"),
    ],
)
def test_amount_that_is_not_a_number_is_refused_naming_its_line_and_tag(
    tmp_path: Path, written: str, edited: str, line: int, tag: str
) -> None:
    path = tmp_path / "s.sta"
    path.write_text(STATEMENT.replace(written, edited, 1), encoding="utf-8")
    with pytest.raises(
        ImportFailed, match=rf"s\.sta: line {line}: {tag} amount: '.*' is not an amount"
    ):
        parse_bank(path)


def test_amount_wrapped_onto_the_next_line_is_still_read(tmp_path: Path) -> None:
    # Sparkasse writes ":61:…CR" and the amount on the line after; `mt-940` reads it.
    path = tmp_path / "s.sta"
    path.write_text(STATEMENT.replace("C250,00NTRF", "C\n250,00NTRF"), encoding="utf-8")
    assert len(parse_bank(path).events) == 1


def test_sum_of_entries_without_its_side_is_refused_naming_its_line(tmp_path: Path) -> None:
    # `mt-940` parses a bare :90: and then raised AttributeError: it has no D or C for it.
    path = tmp_path / "s.sta"
    path.write_text(STATEMENT.replace(":90C:", ":90:"), encoding="utf-8")
    with pytest.raises(ImportFailed, match=r"line 7: :90: must be :90D: \(debit entries\) or"):
        parse_bank(path)


def test_declared_sum_too_large_for_any_amount_is_refused_naming_its_line(tmp_path: Path) -> None:
    # Read by the statement check, not `mt-940` (which takes 15 characters of it): its
    # 40 digits overflowed Decimal's precision in the refusal's figures.
    path = tmp_path / "s.sta"
    path.write_text(STATEMENT.replace("1EUR250,00", "1EUR" + "9" * 40), encoding="utf-8")
    with pytest.raises(ImportFailed, match=r"line 7: :90C: amount: '9{40}' has more than 18"):
        parse_bank(path)
