"""What a parser hands back: the events of a file and the entries it deliberately left out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

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
    cards_masked: int = 0  # card numbers masked in the events' free text (issue 21)


def with_card_numbers_masked(batch: ImportBatch) -> ImportBatch:
    """The batch with card numbers masked in its events' free-text fields (a payer's card
    number in a remittance text): we are the publisher here, so none reaches the topic.
    The reference patterns are the worker's, so every id matching needs is kept."""
    from services.card_masking import CardMasking
    from services.settings import get_settings

    masking = CardMasking.from_settings(get_settings())
    events: list[CloudEvent] = []
    fields: Counter[str] = Counter()
    for event in batch.events:
        masked, found = masking.event(event)
        events.append(masked)
        for f in found:
            fields[f.name.split("[", 1)[0]] += f.count
    if not fields:
        return batch
    total = sum(fields.values())
    where = ", ".join(f"{n} in {name}" for name, n in sorted(fields.items()))
    note = f"card numbers masked before publishing: {total} ({where})"
    return replace(batch, events=tuple(events), checks=(*batch.checks, note), cards_masked=total)
