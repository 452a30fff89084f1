"""The fault suite's summary: a table at the end of the run and bench/results/faults-*.json."""

from __future__ import annotations

import pytest

from tests.fault_support import recorded, recorded_soak, table, write_summary


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures, soak = recorded(), recorded_soak()
    if not figures and not soak:
        return
    path = write_summary(figures, soak)
    terminalreporter.section("fault suite")
    if figures:
        terminalreporter.write_line(table(figures))
        clean = all(f.clean for f in figures)
        terminalreporter.write_line(
            "every fault: 0 lost, 0 duplicated" if clean else "NOT CLEAN: lost or duplicated"
        )
    if soak:
        memory = soak.pop("memory", {})
        terminalreporter.write_line("soak: " + ", ".join(f"{k} {v}" for k, v in soak.items()))
        assert isinstance(memory, dict)
        for name, m in memory.items():
            terminalreporter.write_line(f"  RSS {name}: {m}")
    terminalreporter.write_line(f"summary: {path}")
