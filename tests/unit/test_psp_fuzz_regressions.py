"""PSP reports the fuzzers (tests/fuzz/test_fuzz_psp_*.py) found breaking the importers,
kept as what they now get: read, or refused naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.importers import ImportFailed, parse_psp

PSP = Path(__file__).resolve().parents[1] / "data" / "psp"
REPORTS = [
    ("stripe", "stripe_payout_reconciliation_itemized.csv"),
    ("adyen", "adyen_settlement_detail_report_batch_42.csv"),
    ("paypal", "paypal_settlement_STL-20261102.01.009.CSV"),
    ("wechat_pay", "wechat_pay_trade_bill_20261101.csv"),
]


@pytest.mark.parametrize(("provider", "name"), REPORTS)
def test_report_with_old_mac_line_ends_reads_as_the_same_payouts(
    tmp_path: Path, provider: str, name: str
) -> None:
    # A bare "\r" raised csv.Error ("new-line character seen in unquoted field").
    raw = (PSP / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r"))
    expected = parse_psp(PSP / name, provider).events
    assert parse_psp(path, provider).events == expected


@pytest.mark.parametrize(("provider", "name"), REPORTS)
def test_field_over_the_csv_size_limit_is_refused_naming_its_line(
    tmp_path: Path, provider: str, name: str
) -> None:
    lines = (PSP / name).read_text(encoding="utf-8-sig" if provider != "wechat_pay" else "utf-8")
    second = lines.splitlines(keepends=True)
    second[1] = '"' + "x" * 200_000 + '",' + second[1]
    path = tmp_path / name
    path.write_text("".join(second), encoding="utf-8")
    with pytest.raises(ImportFailed, match=r"line 2: not readable as CSV: field larger than"):
        parse_psp(path, provider)


PAYPAL = PSP / "paypal_settlement_STL-20261102.01.009.CSV"


def test_paypal_row_cut_short_is_refused_naming_the_first_missing_field(tmp_path: Path) -> None:
    # A short SB row lacked the header's columns: KeyError escaped `o2c import psp`.
    lines = PAYPAL.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    at = next(n for n, line in enumerate(lines) if line.startswith('"SB"'))
    lines[at] = ",".join(lines[at].split(",")[:3]) + "\n"
    path = tmp_path / PAYPAL.name
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(ImportFailed, match=rf"line {at + 1}, field .*: the row ends after 3 fie"):
        parse_psp(path, "paypal")


def test_paypal_report_with_a_utf16_mark_but_not_utf16_is_refused(tmp_path: Path) -> None:
    # UnicodeDecodeError escaped: an odd byte count after the byte order mark.
    path = tmp_path / PAYPAL.name
    path.write_bytes("\ufeff".encode("utf-16-le") + "RH,1\n".encode("utf-16-le") + b"\x00")
    with pytest.raises(ImportFailed, match=r"line 2: not UTF-16 text, as its byte order mark"):
        parse_psp(path, "paypal")
