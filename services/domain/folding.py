"""The fold every keyed core shares: a day.closed re-assesses on the new business day; any
other event is recorded once per event id, then the state reports what changed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Protocol, TypeVar

from schemas import events as ev
from schemas.base import CloudEvent

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    class Folded(DataclassInstance, Protocol):
        """A frozen dataclass state that remembers the events it has recorded."""

        @property
        def applied_event_ids(self) -> frozenset[str]: ...

else:
    Folded = object


S = TypeVar("S", bound=Folded)
Out = TypeVar("Out", bound=Sequence[CloudEvent])


def apply_once(
    state: S,
    event: CloudEvent,
    today: date | None,
    record: Callable[[S, CloudEvent], S],
    report: Callable[[S, CloudEvent, date | None], tuple[S, Out]],
    nothing: Out,
) -> tuple[S, Out]:
    if isinstance(event, ev.DayClosed):
        day = event.data.date if today is None else max(today, event.data.date)
        return report(state, event, day)
    if event.id in state.applied_event_ids:
        return state, nothing
    updated = replace(record(state, event), applied_event_ids=state.applied_event_ids | {event.id})
    return report(updated, event, today)
