"""Inspecting and replaying the dead-letter topic.

A dead letter's original bytes and reason hold no card numbers (the edge masked them:
services/runtime/edge.py, `rejection`); account numbers and IBANs are kept for a replay and
masked where people look (`o2c dlq show` without --reveal, services/display_masking.py).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas import events as ev
from schemas.codec import InvalidEvent, decode
from schemas.topics import DEAD_LETTER, OUTPUT_MAX_MESSAGE_BYTES
from services.kafka_io import EventProducer, read_until_idle


@dataclass(frozen=True)
class DeadLetter:
    event: ev.EventRejected

    @property
    def id(self) -> str:
        return self.event.id

    @property
    def original_value(self) -> bytes:
        return base64.b64decode(self.event.data.original_value)


def read_dead_letters(bootstrap: str, idle_seconds: float = 2.0) -> list[DeadLetter]:
    letters = []
    seen: set[str] = set()
    for msg in read_until_idle(bootstrap, [DEAD_LETTER.name], idle_seconds):
        try:
            event = decode(msg.value() or b"", max_bytes=OUTPUT_MAX_MESSAGE_BYTES)
        except InvalidEvent:
            continue  # only o2c-matcher writes here; anything else is not ours to replay
        # The same id twice is one dead letter sent again (a redelivered batch, at least
        # once): shown and replayed once.
        if isinstance(event, ev.EventRejected) and event.id not in seen:
            seen.add(event.id)
            letters.append(DeadLetter(event))
    return letters


def select(
    letters: Iterable[DeadLetter],
    since: datetime | None = None,
    topic: str | None = None,
    ids: Sequence[str] = (),
) -> list[DeadLetter]:
    """Dead letters rejected at or after `since`, from `topic`, with an id starting `ids`."""
    chosen = []
    for letter in letters:
        data = letter.event.data
        if since is not None and data.rejected_at < since:
            continue
        if topic is not None and data.original_topic != topic:
            continue
        if ids and not any(letter.id.startswith(prefix) for prefix in ids):
            continue
        chosen.append(letter)
    return chosen


def replay(bootstrap: str, letters: Sequence[DeadLetter]) -> int:
    """Publish each original message again, unchanged, to its original topic and key.

    A message that is still invalid is rejected again by the worker, with its reason.
    The bytes are the dead letter's, in which the edge masked card numbers in free-text
    fields (services/card_masking.py): the replayed event carries the masked text, as it
    would have once accepted; identifiers and keys were kept, so it matches the same.
    """
    out = EventProducer(bootstrap)
    for letter in letters:
        data = letter.event.data
        out.send_raw(data.original_topic, data.original_key, letter.original_value)
    return out.flush()
