"""Reading CloudEvents JSON-lines files, keeping every line's problems."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from schemas.base import CloudEvent
from schemas.codec import InvalidEvent, decode


@dataclass(frozen=True)
class LineResult:
    line_number: int
    event: CloudEvent | None
    error: InvalidEvent | None


def _lines(path: str) -> Iterator[bytes]:
    if path == "-":
        yield from sys.stdin.buffer
        return
    with Path(path).open("rb") as handle:
        yield from handle


def read_file(path: str) -> list[LineResult]:
    """Decode every non-blank line. Raises FileNotFoundError for a missing file."""
    results = []
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            results.append(LineResult(number, decode(line.rstrip(b"\r\n")), None))
        except InvalidEvent as exc:
            results.append(LineResult(number, None, exc))
    return results


def describe_errors(path: str, results: list[LineResult]) -> list[str]:
    lines = []
    for result in results:
        if result.error is None:
            continue
        event_id = result.error.event_id or "-"
        for problem in result.error.problems:
            field = problem.field or "(message)"
            lines.append(f"{path}:{result.line_number}: id={event_id} {field}: {problem.message}")
    return lines
