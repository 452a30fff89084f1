"""What each event changes in the read models, as plain rows: no Kafka, no database.

`project` turns a batch of events (each with its Kafka offset, which orders the events of
one key) into `Changes`: rows to append, and rows to upsert folded to one per key, so the
database shell can write a whole batch with a few COPY statements.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from functools import singledispatch

from projections.redaction import mask_optional
from schemas import events as ev
from schemas.base import CloudEvent
from schemas.events import type_name
from schemas.topics import CLOCK, CREDIT, CUSTOMERS, MATCHES, MISMATCHES, ORDERS

TOPICS = (CUSTOMERS, ORDERS, MATCHES, MISMATCHES, CREDIT, CLOCK)

# Event types the read models use; anything else on these topics only moves the offset.
PROJECTED_TYPES = frozenset(
    type_name(t)
    for t in (
        ev.CustomerUpserted,
        ev.OrderPlaced,
        ev.OrderAmended,
        ev.OrderCancelled,
        ev.BalanceChanged,
        ev.OrderMatched,
        ev.WriteoffApplied,
        ev.MismatchDetected,
        ev.MismatchResolved,
        ev.MismatchAssigned,
        ev.CreditLimitBreached,
        ev.CreditLimitRestored,
        ev.DayClosed,
    )
)

Row = tuple[object, ...]

BALANCE_COLUMNS = (
    "event_id",
    "order_id",
    "customer_id",
    "channel",
    "region",
    "currency",
    "receivable",
    "paid",
    "refunded",
    "settled",
    "open_balance",
    "status",
    "due_date",
    "event_time",
    "pos",
)
CURRENT_BALANCE_COLUMNS = BALANCE_COLUMNS[1:]
CUSTOMER_COLUMNS = (
    "customer_id",
    "name",
    "region",
    "segment",
    "credit_limit",
    "currency",
    "payment_terms_days",
    "pos",
)
ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "channel",
    "region",
    "currency",
    "placed_at",
    "placed_total",
    "amended_total",
    "amended_pos",
    "cancelled_at",
)
MATCH_COLUMNS = ("event_id", "order_id", "currency", "event_time")
WRITEOFF_COLUMNS = ("event_id", "order_id", "amount", "currency", "reason", "event_time")
MISMATCH_COLUMNS = (
    "event_id",
    "mismatch_id",
    "kind",
    "event_time",
    "pos",
    "reason",
    "severity",
    "currency",
    "expected",
    "actual",
    "difference",
    "order_id",
    "payment_id",
    "payout_id",
    "line_id",
    "customer_id",
    "owner",
    "resolution",
    "note",
    "suggestions",
)
CREDIT_COLUMNS = (
    "event_id",
    "customer_id",
    "kind",
    "currency",
    "credit_limit",
    "exposure",
    "at",
    "pos",
)

# Append-only tables and their columns, in the order `Changes.appended` fills them.
APPEND_TABLES: dict[str, tuple[str, ...]] = {
    "balance_history": BALANCE_COLUMNS,
    "order_matches": MATCH_COLUMNS,
    "writeoffs": WRITEOFF_COLUMNS,
    "mismatch_events": MISMATCH_COLUMNS,
    "credit_events": CREDIT_COLUMNS,
}


@dataclass(frozen=True)
class OrderPatch:
    """What the order facts of a batch say about one order; None: nothing new."""

    order_id: str
    customer_id: str | None = None
    channel: str | None = None
    region: str | None = None
    currency: str | None = None
    placed_at: datetime | None = None
    placed_total: Decimal | None = None
    amended_total: Decimal | None = None
    amended_pos: int | None = None
    cancelled_at: datetime | None = None

    def row(self) -> Row:
        return tuple(getattr(self, c) for c in ORDER_COLUMNS)


@dataclass
class Changes:
    appended: dict[str, list[Row]] = field(default_factory=lambda: {t: [] for t in APPEND_TABLES})
    # Upserts, one row per key: the row of the highest offset wins.
    customers: dict[str, Row] = field(default_factory=dict)
    current_balances: dict[str, Row] = field(default_factory=dict)
    orders: dict[str, OrderPatch] = field(default_factory=dict)
    closed_days: set[date] = field(default_factory=set)

    def __len__(self) -> int:
        return (
            sum(len(rows) for rows in self.appended.values())
            + len(self.customers)
            + len(self.current_balances)
            + len(self.orders)
            + len(self.closed_days)
        )


def project(events: Iterable[tuple[CloudEvent, int]]) -> Changes:
    """The read-model changes of `events`, each with its offset, in log order."""
    changes = Changes()
    for event, offset in events:
        _project(event, offset, changes)
    return changes


@singledispatch
def _project(event: CloudEvent, offset: int, changes: Changes) -> None:
    """Events the read models do not use change nothing."""


@_project.register
def _(event: ev.CustomerUpserted, offset: int, changes: Changes) -> None:
    d = event.data
    row = (
        d.customer_id,
        d.name,
        d.region,
        d.segment,
        d.credit_limit,
        d.currency,
        d.payment_terms_days,
        offset,
    )
    _keep_latest(changes.customers, d.customer_id, row)


@_project.register
def _(event: ev.OrderPlaced, offset: int, changes: Changes) -> None:
    d = event.data
    _patch_order(
        changes,
        OrderPatch(
            d.order_id,
            customer_id=d.customer_id,
            channel=d.channel,
            region=d.region,
            currency=d.currency,
            placed_at=d.placed_at,
            placed_total=d.total_amount,
        ),
    )


@_project.register
def _(event: ev.OrderAmended, offset: int, changes: Changes) -> None:
    d = event.data
    _patch_order(changes, OrderPatch(d.order_id, amended_total=d.total_amount, amended_pos=offset))


@_project.register
def _(event: ev.OrderCancelled, offset: int, changes: Changes) -> None:
    _patch_order(changes, OrderPatch(event.data.order_id, cancelled_at=event.time))


@_project.register
def _(event: ev.BalanceChanged, offset: int, changes: Changes) -> None:
    d = event.data
    row = (
        event.id,
        d.order_id,
        d.customer_id,
        d.channel,
        d.region,
        d.currency,
        d.receivable,
        d.paid,
        d.refunded,
        d.settled,
        d.open_balance,
        d.status,
        d.due_date,
        event.time,
        offset,
    )
    changes.appended["balance_history"].append(row)
    _keep_latest(changes.current_balances, d.order_id, row[1:])


@_project.register
def _(event: ev.OrderMatched, offset: int, changes: Changes) -> None:
    d = event.data
    changes.appended["order_matches"].append((event.id, d.order_id, d.currency, event.time))


@_project.register
def _(event: ev.WriteoffApplied, offset: int, changes: Changes) -> None:
    d = event.data
    changes.appended["writeoffs"].append(
        (event.id, d.order_id, d.amount, d.currency, d.reason, event.time)
    )


def _mismatch_row(event: CloudEvent, offset: int, kind: str, **fields: object) -> Row:
    values: dict[str, object] = {
        "event_id": event.id,
        "kind": kind,
        "event_time": event.time,
        "pos": offset,
        **fields,
    }
    for name in ("mismatch_id", "order_id", "payment_id", "payout_id", "line_id", "customer_id"):
        values.setdefault(name, getattr(event.data, name, None))
    return tuple(values.get(c) for c in MISMATCH_COLUMNS)


@_project.register
def _(event: ev.MismatchDetected, offset: int, changes: Changes) -> None:
    d = event.data
    changes.appended["mismatch_events"].append(
        _mismatch_row(
            event,
            offset,
            "detected",
            event_time=d.detected_at,
            reason=d.reason.value,
            severity=d.severity,
            currency=d.currency,
            expected=d.expected,
            actual=d.actual,
            difference=d.difference,
            suggestions=_suggestions(d.suggestions),
        )
    )


def _suggestions(suggestions: tuple[ev.Suggestion, ...]) -> str | None:
    # The jsonb column takes the JSON text, as on the wire (amounts as decimal strings).
    if not suggestions:
        return None
    return "[" + ",".join(s.model_dump_json() for s in suggestions) + "]"


@_project.register
def _(event: ev.MismatchResolved, offset: int, changes: Changes) -> None:
    d = event.data
    changes.appended["mismatch_events"].append(
        _mismatch_row(
            event,
            offset,
            "resolved",
            event_time=d.resolved_at or event.time,
            reason=None if d.reason is None else d.reason.value,
            resolution=d.resolution,
            note=mask_optional(d.note),  # free text: an IBAN pasted there is masked
        )
    )


@_project.register
def _(event: ev.MismatchAssigned, offset: int, changes: Changes) -> None:
    d = event.data
    changes.appended["mismatch_events"].append(
        _mismatch_row(
            event,
            offset,
            "assigned",
            event_time=d.assigned_at,
            owner=d.assignee,
            note=mask_optional(d.note),
        )
    )


def _credit(event: ev.CreditLimitBreached | ev.CreditLimitRestored, kind: str, offset: int) -> Row:
    d = event.data
    return (event.id, d.customer_id, kind, d.currency, d.credit_limit, d.exposure, d.at, offset)


@_project.register
def _(event: ev.CreditLimitBreached, offset: int, changes: Changes) -> None:
    changes.appended["credit_events"].append(_credit(event, "breached", offset))


@_project.register
def _(event: ev.CreditLimitRestored, offset: int, changes: Changes) -> None:
    changes.appended["credit_events"].append(_credit(event, "restored", offset))


@_project.register
def _(event: ev.DayClosed, offset: int, changes: Changes) -> None:
    changes.closed_days.add(event.data.date)


def _keep_latest(rows: dict[str, Row], key: str, row: Row) -> None:
    # The row's last column is its offset; a key lives on one partition, so it orders them.
    before = rows.get(key)
    if before is None or _pos(before) < _pos(row):
        rows[key] = row


def _pos(row: Row) -> int:
    value = row[-1]
    assert isinstance(value, int)
    return value


def _patch_order(changes: Changes, patch: OrderPatch) -> None:
    before = changes.orders.get(patch.order_id)
    changes.orders[patch.order_id] = patch if before is None else merge(before, patch)


def merge(earlier: OrderPatch, later: OrderPatch) -> OrderPatch:
    """Both patches' facts; the later amendment wins, the first cancellation stays."""
    updates = {
        name: getattr(later, name)
        for name in ORDER_COLUMNS[1:]
        if getattr(later, name) is not None and name not in ("amended_total", "amended_pos")
    }
    if earlier.cancelled_at is not None:
        updates.pop("cancelled_at", None)
    if later.amended_pos is not None and (
        earlier.amended_pos is None or later.amended_pos > earlier.amended_pos
    ):
        updates["amended_total"] = later.amended_total
        updates["amended_pos"] = later.amended_pos
    return replace(earlier, **updates)
