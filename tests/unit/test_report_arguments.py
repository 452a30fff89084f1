"""`o2c report`'s arguments: what it accepts and what it refuses before connecting."""

from __future__ import annotations

import pytest

from services.cli.main import build_parser


def test_the_exceptions_report_takes_a_limit() -> None:
    args = build_parser().parse_args(["report", "exceptions", "--status", "open", "--limit", "50"])
    assert args.limit == 50


def test_no_limit_means_every_exception() -> None:
    assert build_parser().parse_args(["report", "exceptions"]).limit is None


@pytest.mark.parametrize("limit", ["0", "-3", "ten", "2.5"])
def test_a_limit_that_is_not_a_count_above_zero_is_refused(
    limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["report", "exceptions", "--limit", limit])
    assert exited.value.code == 2
    assert "not a whole number above 0" in capsys.readouterr().err
