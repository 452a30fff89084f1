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
