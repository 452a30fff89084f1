"""Mapped CSV statements and mappings the fuzzer (tests/fuzz/test_fuzz_csv_mapping.py) found
breaking the importer, kept as the refusals they now get."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.importers import ImportFailed, parse_bank

MAPPING = """
[csv]
delimiter = ";"
[account]
id = "ACC-1"
currency = "EUR"
[columns]
booking_date = "Date"
amount = "Amount"
"""
CSV = "Date;Amount\n2026-11-01;12.50\n2026-11-02;-3.00\n"


def _import(tmp_path: Path, csv: bytes, mapping: bytes) -> object:
    (tmp_path / "s.csv").write_bytes(csv)
    (tmp_path / "m.toml").write_bytes(mapping)
    return parse_bank(tmp_path / "s.csv", mapping=tmp_path / "m.toml")


# Each of these raised TypeError, AttributeError, ValueError or LookupError out of `o2c import`.
@pytest.mark.parametrize(
    ("setting", "edited", "where"),
    [
        ('delimiter = ";"', 'delimiter = ";;"', "csv.delimiter"),
        ('delimiter = ";"', "delimiter = 5", "csv.delimiter"),
        ('delimiter = ";"', 'delimiter = ";"\nencoding = "utf-000"', "csv.encoding"),
        ('delimiter = ";"', 'delimiter = ";"\nskip_lines = "two"', "csv.skip_lines"),
        ('delimiter = ";"', 'delimiter = ";"\nskip_lines = -1', "csv.skip_lines"),
        ('currency = "EUR"', "currency = 978", "account.currency"),
        ('amount = "Amount"', "amount = 7", "columns.amount"),
        ('amount = "Amount"', 'amount = "Amount"\ncredit_marks = 1', "columns.credit_marks"),
        ('[csv]\ndelimiter = ";"', 'csv = 1\n[csv2]\ndelimiter = ";"', r"\[csv\]"),
    ],
)
def test_mapping_setting_of_the_wrong_kind_is_refused_naming_it(
    tmp_path: Path, setting: str, edited: str, where: str
) -> None:
    mapping = MAPPING.replace(setting, edited).encode()
    with pytest.raises(ImportFailed, match=rf"m\.toml: {where}: "):
        _import(tmp_path, CSV.encode(), mapping)


def test_mapping_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match=r"m\.toml: not UTF-8 text, as TOML is"):
        _import(tmp_path, CSV.encode(), MAPPING.encode() + b"# \xff\n")


def test_csv_with_old_mac_line_ends_reads_like_any_other(tmp_path: Path) -> None:
    # A bare "\r" raised csv.Error ("new-line character seen in unquoted field").
    batch = _import(tmp_path, CSV.replace("\n", "\r").encode(), MAPPING.encode())
    assert len(batch.events) == 2  # type: ignore[attr-defined]


def test_csv_field_over_the_csv_size_limit_is_refused_naming_its_line(tmp_path: Path) -> None:
    csv = CSV + "2026-11-03;" + "1" * 200_000 + "\n"
    with pytest.raises(ImportFailed, match=r"s\.csv: line 4: not readable as CSV: field larger"):
        _import(tmp_path, csv.encode(), MAPPING.encode())
