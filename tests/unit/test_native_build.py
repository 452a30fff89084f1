"""The rule modules compiled by mypyc (services/domain/native.py) and their pure-Python
fallback decide and emit the same: the golden record and the ledger's properties hold on
both, and a compiled module edited since its build is caught."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.domain import native

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, pure: bool) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != native.PURE_PYTHON_VARIABLE}
    if pure:
        env[native.PURE_PYTHON_VARIABLE] = "1"
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_pure_python_imports_every_rule_module_from_its_source() -> None:
    modules = [f"{native.PACKAGE}.{name}" for name in native.COMPILED]
    script = (
        f"import sys, {', '.join(modules)}\n"
        f"print(all(sys.modules[m].__file__.endswith('.py') for m in {modules!r}))"
    )
    result = _run("-c", script, pure=True)
    assert result.stdout.strip() == "True", result.stderr


def test_the_golden_record_holds_on_pure_python() -> None:
    """The normal test run checks the record on the compiled modules (when built); this
    checks the same .py sources run as Python emit and store the same bytes."""
    result = _run("-m", "bench.golden", pure=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rule modules: pure Python" in result.stdout
    assert "identical to the golden record" in result.stdout


def test_the_ledger_properties_hold_on_pure_python() -> None:
    result = _run(
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/unit/test_ledger_invariants.py",
        pure=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_built_modules_are_the_ones_imported() -> None:
    """Where `make install` compiled the modules, the tests run them compiled."""
    if not native.MANIFEST.exists() or native.pure_python_requested():
        return  # nothing built (no compiler): pure Python, checked by the tests above
    modes = {name: native.module_mode(name) for name in native.COMPILED}
    assert set(modes.values()) == {"compiled"}, modes


def test_no_compiled_module_is_older_than_its_source() -> None:
    assert native.stale_modules() == [], (
        "these rule modules were edited after mypyc compiled them, and Python still imports "
        "the old compiled version: run `make install` (or `python -m services.domain.build`)"
    )
