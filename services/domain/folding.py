"""The fold every keyed core shares: a day.closed re-assesses on the new business day; any
other event is recorded once per event id, then the state reports what changed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import date
from operator import attrgetter
from typing import Any, Protocol, TypeVar

from schemas import events as ev
from schemas.base import CloudEvent
from services.domain.folded import Folded

S = TypeVar("S", bound=Folded)
Out = TypeVar("Out", bound=Sequence[CloudEvent])
T = TypeVar("T")


Layout = tuple[Callable[[Any], tuple[Any, ...]], dict[str, int]]
_LAYOUTS: dict[type[Any], Layout] = {}


def _layout(cls: type[Any]) -> Layout:
    """A getter of every field at once, and each field's position."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        names = [f.name for f in fields(cls)]
        assert len(names) > 1, "attrgetter of one name returns a value, not a tuple"
        layout = _LAYOUTS[cls] = attrgetter(*names), {name: n for n, name in enumerate(names)}
    return layout


def evolve(state: T, **changes: Any) -> T:
    """`dataclasses.replace(state, **changes)` for a dataclass of two or more fields, at
    half the cost: the fields are read in one call and passed by position."""
    cls: type[Any] = type(state)
    values_of, position = _layout(cls)
    values = list(values_of(state))
    for name, value in changes.items():
        values[position[name]] = value
    evolved: T = cls(*values)
    return evolved


class Record(Protocol[S]):
    """The state with the event's fact, and `applied_event_ids` as given."""

    def __call__(
        self, state: S, event: CloudEvent, /, *, applied_event_ids: frozenset[str]
    ) -> S: ...


def recording_ids(record: Callable[[S, CloudEvent], S]) -> Record[S]:
    """A `Record` of a function that records the fact alone (the ids are set after it; the
    ledger's own does both in one step, once per event)."""

    def recorded(state: S, event: CloudEvent, /, *, applied_event_ids: frozenset[str]) -> S:
        return evolve(record(state, event), applied_event_ids=applied_event_ids)

    return recorded


def apply_once(
    state: S,
    event: CloudEvent,
    today: date | None,
    record: Record[S],
    report: Callable[[S, CloudEvent, date | None], tuple[S, Out]],
    nothing: Out,
) -> tuple[S, Out]:
    if isinstance(event, ev.DayClosed):
        day = event.data.date if today is None else max(today, event.data.date)
        return report(state, event, day)
    if event.id in state.applied_event_ids:
        return state, nothing
    updated = record(state, event, applied_event_ids=state.applied_event_ids | {event.id})
    return report(updated, event, today)
