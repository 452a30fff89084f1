"""What a parser hands back: the events of a file and the entries it deliberately left out."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.base import CloudEvent


@dataclass(frozen=True)
class Skipped:
    where: str
    reason: str  # e.g. "pending entry (status PDNG), not booked yet"


@dataclass(frozen=True)
class ImportBatch:
    path: str
    kind: str  # the bank format or PSP provider
    events: tuple[CloudEvent, ...]
    skipped: tuple[Skipped, ...] = field(default=())
    # What was checked before publishing, for the summary ("balance check: 3 statements add up").
    checks: tuple[str, ...] = field(default=())
