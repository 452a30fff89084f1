"""The one error an importer raises: it names the file and where in it the problem is."""

from __future__ import annotations

from pathlib import Path


class ImportFailed(ValueError):
    """A file that cannot be imported. Nothing from it is published."""

    def __init__(self, path: str | Path, where: str, problem: str) -> None:
        self.path = str(path)
        self.where = where  # "line 12", "element Stmt[1]/Ntry[2]/Amt", "row 5", or ""
        self.problem = problem
        location = f"{self.path}: {where}" if where else self.path
        super().__init__(f"{location}: {problem}")


def line_of(text: str, fragment: str) -> int | None:
    """1-based line where `fragment` (or its first line) starts in `text`, if found."""
    probe = fragment.strip().splitlines()[0] if fragment.strip() else ""
    if not probe:
        return None
    at = text.find(probe)
    return None if at < 0 else text.count("\n", 0, at) + 1
