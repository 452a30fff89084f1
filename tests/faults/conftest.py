"""The fault suite's summary: a table at the end of the run and bench/results/faults-*.json."""

from __future__ import annotations

import pytest

from tests.fault_support import recorded, table, write_summary


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures = recorded()
    if not figures:
        return
    path = write_summary(figures)
    terminalreporter.section("fault suite")
    terminalreporter.write_line(table(figures))
    clean = all(f.clean for f in figures)
    terminalreporter.write_line(
        f"{'every fault: 0 lost, 0 duplicated' if clean else 'NOT CLEAN'}; summary: {path}"
    )
