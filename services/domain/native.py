"""Which rule modules run compiled (mypyc, built by `make install`) and which as Python.

`python -m services.domain.build` compiles the modules of COMPILED in place: next to each
.py an extension module, which Python imports instead of the .py, and one shared library
(`_native__mypyc`). The build records the sha256 of every source it compiled in
`compiled.json`, so a module edited since (a stale extension that would still be imported)
is reported here and fails tests/unit/test_native_build.py until the build runs again.

O2C_PURE_PYTHON=1 makes every module of COMPILED import from its .py, compiled or not:
how the golden record is checked on pure Python too.

`__init__`: mypyc compiles a dataclass's fields and methods but not the `__init__` that
the `dataclass` decorator generates at run time; a frozen one runs interpreted, one
`object.__setattr__` call a field (1.4 µs for a class of five fields, 3.1 µs for the
ledger's seventeen). The classes built on every event (the ledger, its assessment and
money, the facts most events add, conditions) have theirs written out (`init=False`),
which mypyc compiles (0.07 µs); tests/unit/test_written_inits.py checks that each sets
every field, in order, with the dataclass's defaults.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

# The rule modules mypyc compiles, in services/domain (docs/performance.md, "Third round").
# Not payouts, whose payout/1 pydantic reads and writes as the dataclasses themselves:
# mypyc keeps only simple annotations (`str | None` becomes `type`) and its classes have
# no `__dict__` for pydantic to fill. The ledger's, credit's and suspense's formats, old
# ones too, are read as rows (rows.field_types reads the hints from the source).
COMPILED: tuple[str, ...] = (
    "assessment",
    "candidates",
    "conditions",
    "credit",
    "folding",
    "keyed",
    "ledger",
    "matching",
    "outputs",
    "policy",
    "rows",
    "suspense",
)

PACKAGE = "services.domain"
HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "compiled.json"
PURE_PYTHON_VARIABLE = "O2C_PURE_PYTHON"  # declared and documented in services/settings.py


def pure_python_requested() -> bool:
    # Read from the environment, not from Settings: it must act before any rule module is
    # imported, and the settings module is not a dependency of the pure cores.
    return os.environ.get(PURE_PYTHON_VARIABLE, "").strip().lower() in {"1", "true", "yes"}


class _SourceFirst:
    """A finder that loads the modules of COMPILED from their .py files."""

    names = frozenset(f"{PACKAGE}.{name}" for name in COMPILED)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        source = HERE / f"{fullname.rpartition('.')[2]}.py"
        return importlib.util.spec_from_file_location(fullname, source)


def honour_pure_python() -> None:
    if pure_python_requested() and not any(isinstance(f, _SourceFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFirst())


def module_mode(name: str) -> str:
    """ "compiled" or "python": how services.domain.<name> runs in this process."""
    module = sys.modules.get(f"{PACKAGE}.{name}")
    if module is None:
        spec = importlib.util.find_spec(f"{PACKAGE}.{name}")
        origin = spec.origin if spec is not None else None
    else:
        origin = getattr(module, "__file__", None)
    return "python" if origin is None or origin.endswith(".py") else "compiled"


def source_digest(name: str) -> str:
    return hashlib.sha256((HERE / f"{name}.py").read_bytes()).hexdigest()


def stale_modules() -> list[str]:
    """Modules whose extension was built from another version of their .py: run
    `make install` (or `python -m services.domain.build`) again."""
    if not MANIFEST.exists():
        return []
    built: dict[str, str] = json.loads(MANIFEST.read_text())
    return [
        name
        for name, digest in sorted(built.items())
        if _extension(name) is not None and source_digest(name) != digest
    ]


def _extension(name: str) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = HERE / f"{name}{suffix}"
        if candidate.exists():
            return candidate
    return None


def summary() -> str:
    """One line for `python -m services.domain` and the bench's reports."""
    compiled = [name for name in COMPILED if module_mode(name) == "compiled"]
    if not compiled:
        why = f" ({PURE_PYTHON_VARIABLE}=1)" if pure_python_requested() else ""
        return f"rule modules: pure Python{why}"
    stale = stale_modules()
    line = f"rule modules: {len(compiled)} of {len(COMPILED)} compiled with mypyc"
    if len(compiled) < len(COMPILED):
        line += f" (python: {', '.join(n for n in COMPILED if n not in compiled)})"
    if stale:
        line += f"; STALE, edited since the build: {', '.join(stale)} (run `make install`)"
    return line
