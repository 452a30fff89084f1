"""Building events with deterministic ids, and delivering them in a bounded disorder.

Events are validated by the contract's models as they are built, encoded at once (pending
events cost their bytes only) and released in delivery order: event time, plus for a few a
delay of at most `max_delay_minutes` (out-of-order delivery) or a second copy (duplicate
delivery).
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from schemas.base import CloudEvent, EventData
from schemas.codec import encode
from schemas.events import type_name
from services.simulator.config import SimConfig

E = TypeVar("E", bound=CloudEvent)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=UTC)


class EventFactory:
    def __init__(self, seed: int) -> None:
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"o2c-simulator:{seed}")
        self._types: dict[type[CloudEvent], str] = {}

    def make(self, cls: type[E], data: EventData, moment: datetime, source: str, key: str) -> E:
        """An event whose id is derived from the seed and `key`, unique per business fact."""
        kind = self._types.get(cls)
        if kind is None:
            kind = self._types[cls] = type_name(cls)
        subject = next(
            (str(v) for v in (getattr(data, f, None) for f in cls.key_fields) if v), None
        )
        return cls(
            specversion="1.0",
            id=str(uuid.uuid5(self.namespace, f"{kind}\x1f{key}")),
            source=source,
            type=kind,
            time=moment,
            subject=subject,
            data=data,
        )


class Delivery:
    """A priority queue of encoded events keyed by delivery time."""

    def __init__(self, config: SimConfig, rng: random.Random, last_day: date) -> None:
        self.config = config
        self.rng = rng
        self.last_day = last_day
        self._heap: list[tuple[datetime, int, bytes]] = []
        self._seq = 0
        self.duplicates = 0
        self.delayed = 0

    def send(self, event: CloudEvent, *, disorder: bool = True) -> bool:
        """Queue `event`; False (and nothing queued) when it falls after the last day."""
        moment = event.time
        if moment.date() > self.last_day:
            return False
        raw = encode(event)
        deliver = moment
        if disorder and self.rng.random() < self.config.late_rate:
            deliver = self._later(moment)
            self.delayed += 1
        self._push(deliver, raw)
        if disorder and self.rng.random() < self.config.duplicate_rate:
            self._push(self._later(moment), raw)
            self.duplicates += 1
        return True

    def _later(self, moment: datetime) -> datetime:
        delay = timedelta(seconds=self.rng.randint(1, max(1, self.config.max_delay_minutes * 60)))
        # Never past the day's close: a day.closed follows everything of its day.
        return min(moment + delay, at(moment.date(), 23, 30))

    def _push(self, deliver: datetime, raw: bytes) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (deliver, self._seq, raw))

    def release_until(self, moment: datetime) -> Iterator[bytes]:
        while self._heap and self._heap[0][0] < moment:
            yield heapq.heappop(self._heap)[2]

    def __len__(self) -> int:
        return len(self._heap)
