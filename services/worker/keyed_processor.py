"""The one shell of every stateful processor: a state per message key in the task's store,
the business day per task, and the core called once per event.

A processor is a `Core`: how to start a state, how to apply an event to it, and whether a
state may change when a day closes. The runtime (services/runtime) does the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import InvalidEvent
from schemas.topics import TOPICS_BY_NAME, Role
from services import metrics
from services.runtime.edge import RawMessage
from services.runtime.processor import Task

S = TypeVar("S")

# Keys no order, customer or payout id can take (they start with NUL): bookkeeping of a
# task kept in its store beside the states.
BOOKKEEPING = b"\x00"
CLOCK_KEY_PREFIX = BOOKKEEPING + b"clock/"

# (state, event, message, business day) -> (state, outputs). May raise InvalidEvent for an
# event that breaks what the processor's input promises; that event is dead-lettered.
Apply = Callable[[S, CloudEvent, RawMessage, date | None], tuple[S, Sequence[CloudEvent]]]
# Forward an event elsewhere instead of applying it here: True when it was forwarded.
Forward = Callable[[Task, RawMessage, CloudEvent], bool]


def _always(_state: object, _stored: bytes | None) -> bool:
    return True


@dataclass(frozen=True)
class Core(Generic[S]):
    name: str
    new: Callable[[str], S]
    apply: Apply[S]
    # Whether closing a day may change a state, from the state when it is at hand, else
    # from its stored bytes: a day close then skips what it cannot change unparsed.
    changes_with_time: Callable[[S | None, bytes | None], bool] = _always
    forward: Forward | None = None
    # Called with the state before and after an event that changed it (metrics).
    changed: Callable[[S, S], None] | None = None
    # The event's key, where the message key is not it (default: the message key).
    key_of: Callable[[RawMessage, CloudEvent], bytes | None] | None = None


def business_day(task: Task) -> date | None:
    stored = task.store.get_raw(CLOCK_KEY_PREFIX + str(task.partition).encode())
    return date.fromisoformat(stored.decode()) if stored else None


class Keyed(Generic[S]):
    def __init__(self, core: Core[S]) -> None:
        self.core = core
        self._counters: dict[tuple[str, str], Any] = {}

    def handle(self, task: Task, message: RawMessage, event: CloudEvent) -> None:
        if TOPICS_BY_NAME[message.topic].role is not Role.INTERNAL:
            # Copies on internal topics were counted where they entered.
            self._count(message.topic, event.type)
        if isinstance(event, ev.DayClosed):
            self.close_day(task, message, event)
            return
        if self.core.forward is not None and self.core.forward(task, message, event):
            return
        key = self.core.key_of(message, event) if self.core.key_of else message.key
        if not key or key.startswith(BOOKKEEPING):
            problem = InvalidEvent.single("key", "a message without a usable key", event.id)
            task.dead_letter(message, problem)
            return
        state = task.store.get(key)
        self._apply(task, message, key, event, business_day(task), state)

    def _apply(
        self,
        task: Task,
        message: RawMessage,
        key: bytes,
        event: CloudEvent,
        today: date | None,
        state: S | None,
    ) -> None:
        before = self.core.new(key.decode()) if state is None else state
        try:
            updated, outputs = self.core.apply(before, event, message, today)
        except InvalidEvent as problem:
            task.dead_letter(message, problem)
            return
        if updated is not before:
            task.store.put(key, updated)
            if self.core.changed is not None:
                self.core.changed(before, updated)
        if outputs:
            task.send(outputs)

    def close_day(self, task: Task, message: RawMessage, event: ev.DayClosed) -> None:
        """Re-assess every state of the task that the new business day may change, in key
        order (so a replay repeats the outputs in the same order)."""
        before = business_day(task)
        day = event.data.date if before is None else max(before, event.data.date)
        waiting: dict[bytes, tuple[S | None, bytes | None]] = {}
        for key, state, stored in task.store.scan():
            if key.startswith(BOOKKEEPING):
                continue
            if self.core.changes_with_time(state, stored):
                waiting[key] = (state, stored)
        for key in sorted(waiting):
            state, _stored = waiting[key]
            self._apply(task, message, key, event, before, state or task.store.get(key))
        if day != before:
            task.store.put_raw(
                CLOCK_KEY_PREFIX + str(task.partition).encode(), day.isoformat().encode()
            )

    def _count(self, topic: str, kind: str) -> None:
        counter = self._counters.get((topic, kind))
        if counter is None:
            counter = self._counters[(topic, kind)] = metrics.EVENTS_IN.labels(self.core.name, kind)
        counter.inc()
