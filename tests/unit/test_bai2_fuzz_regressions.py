"""BAI2 inputs the fuzzer (tests/fuzz/test_fuzz_bai2.py) found breaking the importer, kept
as the refusals they now get."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.importers import ImportFailed, parse_bank

BAI2 = """01,BANKID,CUSTID,261102,0800,1,80,1,2/
02,CUSTID,BANKID,1,261101,,USD,2/
03,123456789,USD,010,100000,,,015,125000,,/
16,175,25000,,B1,ORD-1001,Payment ORD-1001/
49,250000,3/
98,250000,1,5/
99,250000,1,7/
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cut.bai2"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.timeout(20)
@pytest.mark.parametrize("records", [4, 5, 6], ids=["after 16", "after 49", "after 98"])
def test_file_cut_short_before_its_trailer_is_refused_not_parsed_forever(
    tmp_path: Path, records: int
) -> None:
    # `bai2` loops forever (and grows without bound) on a file that ends inside a section.
    cut = "".join(BAI2.splitlines(keepends=True)[:records])
    with pytest.raises(ImportFailed, match=rf"line {records}: the file ends without its 99"):
        parse_bank(_file(tmp_path, cut), "bai2")


@pytest.mark.parametrize(
    ("written", "edited", "problem"),
    [
        ("16,175,", "16,,", "line 4: transaction detail \\(16\\) without a type code"),
        ("1,261101,,USD", "1,,,USD", "line 4: its group header \\(02\\) has no as-of date"),
    ],
)
def test_blank_field_the_entry_needs_is_refused_naming_the_line(
    tmp_path: Path, written: str, edited: str, problem: str
) -> None:
    # `bai2` leaves a blank field None: AttributeError escaped `o2c import`.
    with pytest.raises(ImportFailed, match=problem):
        parse_bank(_file(tmp_path, BAI2.replace(written, edited)), "bai2")


def test_record_with_too_few_fields_for_its_funds_type_is_refused_as_not_bai2(
    tmp_path: Path,
) -> None:
    # `bai2` raises IndexError here: one of the library's refusals, named as such.
    cut = BAI2.replace("16,175,25000,,B1,ORD-1001,Payment ORD-1001/", "16,175,25000,S/")
    with pytest.raises(ImportFailed, match="not a valid BAI2 file: pop from empty list"):
        parse_bank(_file(tmp_path, cut), "bai2")
