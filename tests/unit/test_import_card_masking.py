"""Our importers publish no card numbers: they mask them and say how many."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import events as ev
from services.cli.main import main
from services.importers import parse_bank
from tests.unit.test_import_cli import STATEMENT

CARD = "4111111111111111"
WITH_CARD = STATEMENT.replace(":86:Payment ORD-1001 Ann", f":86:Payment ORD-1001 card {CARD}")


def test_a_card_number_in_a_statement_is_masked_in_the_events_and_the_reference_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sta"
    path.write_text(WITH_CARD, encoding="utf-8")
    batch = parse_bank(path)
    texts = [e.data.remittance_info for e in batch.events if isinstance(e, ev.BankLineBooked)]
    assert not any(CARD in (t or "") for t in texts)
    assert any("ORD-1001 card ************1111" in (t or "") for t in texts)
    assert batch.cards_masked == 1


def test_the_import_summary_says_how_many_card_numbers_were_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.sta"
    path.write_text(WITH_CARD, encoding="utf-8")
    assert main(["import", "bank", str(path), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "card numbers masked before publishing: 1 (1 in remittance_info)" in err
    assert CARD not in out + err


def test_a_statement_without_card_numbers_says_nothing_of_them(tmp_path: Path) -> None:
    path = tmp_path / "s.sta"
    path.write_text(STATEMENT, encoding="utf-8")
    batch = parse_bank(path)
    assert batch.cards_masked == 0
    assert not any("card numbers" in c for c in batch.checks)
