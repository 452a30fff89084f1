"""The exception queue's current state (table `exception_queue`, migration 0006), folded
from the mismatch events of each batch by the timeline's projection.

`fold` is pure: per mismatch, the batch's latest detection, earliest detection time, last
event and last assignment, each with its offset (`pos`: every event of one mismatch is on
one partition, so offsets order them). `UPSERT` merges a folded row into the stored one
by the same rule, so the table says what the `exceptions` view says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from projections.redaction import mask_optional
from schemas import events as ev
from schemas.base import CloudEvent

COLUMNS = (
    "mismatch_id",
    "detected_pos",
    "reason",
    "severity",
    "currency",
    "expected",
    "actual",
    "difference",
    "amount",
    "order_id",
    "payment_id",
    "payout_id",
    "line_id",
    "customer_id",
    "detected_at",
    "last_pos",
    "last_kind",
    "last_time",
    "last_resolution",
    "last_note",
    "owner_pos",
    "owner",
)
_DETECTION = COLUMNS[2:14]  # taken from the latest detection

STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_exception_queue"
    " (LIKE exception_queue INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_COLUMN_LIST = ", ".join(COLUMNS)
UPSERT = (
    f"INSERT INTO exception_queue AS t ({_COLUMN_LIST})"
    f" SELECT {_COLUMN_LIST} FROM stage_exception_queue"
    " ON CONFLICT (mismatch_id) DO UPDATE SET "
    + ", ".join(
        [
            f"{c} = CASE WHEN excluded.detected_pos > coalesce(t.detected_pos, -1)"
            f" THEN excluded.{c} ELSE t.{c} END"
            for c in _DETECTION
        ]
        + [
            "detected_pos = greatest(t.detected_pos, excluded.detected_pos)",
            "detected_at = least(t.detected_at, excluded.detected_at)",
        ]
        + [
            f"{c} = CASE WHEN excluded.last_pos > t.last_pos THEN excluded.{c} ELSE t.{c} END"
            for c in ("last_kind", "last_time", "last_resolution", "last_note")
        ]
        + [
            "last_pos = greatest(t.last_pos, excluded.last_pos)",
            "owner = CASE WHEN excluded.owner_pos > coalesce(t.owner_pos, -1)"
            " THEN excluded.owner ELSE t.owner END",
            "owner_pos = greatest(t.owner_pos, excluded.owner_pos)",
        ]
    )
)


@dataclass(frozen=True)
class QueueRow:
    mismatch_id: str
    last_pos: int
    last_kind: str
    last_time: datetime
    last_resolution: str | None = None
    last_note: str | None = None
    detected_pos: int | None = None
    reason: str | None = None
    severity: str | None = None
    currency: str | None = None
    expected: Decimal | None = None
    actual: Decimal | None = None
    difference: Decimal | None = None
    amount: Decimal | None = None
    order_id: str | None = None
    payment_id: str | None = None
    payout_id: str | None = None
    line_id: str | None = None
    customer_id: str | None = None
    detected_at: datetime | None = None
    owner_pos: int | None = None
    owner: str | None = None

    def row(self) -> tuple[object, ...]:
        return tuple(getattr(self, c) for c in COLUMNS)


def _own(event: CloudEvent, offset: int) -> QueueRow | None:
    match event:
        case ev.MismatchDetected(data=d):
            amount = next(
                (abs(v) for v in (d.difference, d.actual, d.expected) if v is not None), None
            )
            return QueueRow(
                d.mismatch_id,
                offset,
                "detected",
                d.detected_at,
                detected_pos=offset,
                reason=d.reason.value,
                severity=d.severity,
                currency=d.currency,
                expected=d.expected,
                actual=d.actual,
                difference=d.difference,
                amount=amount,
                order_id=d.order_id,
                payment_id=d.payment_id,
                payout_id=d.payout_id,
                line_id=d.line_id,
                customer_id=d.customer_id,
                detected_at=d.detected_at,
            )
        case ev.MismatchResolved(data=d):
            return QueueRow(
                d.mismatch_id,
                offset,
                "resolved",
                d.resolved_at or event.time,
                d.resolution,
                mask_optional(d.note),  # free text: an IBAN pasted there is masked
            )
        case ev.MismatchAssigned(data=d):
            return QueueRow(
                d.mismatch_id, offset, "assigned", d.assigned_at, owner_pos=offset, owner=d.assignee
            )
    return None


def merge(before: QueueRow, later: QueueRow) -> QueueRow:
    """Both rows' facts by the view's rule; `later` may still hold lower offsets."""
    updates: dict[str, object] = {}
    if later.detected_pos is not None and later.detected_pos > (before.detected_pos or -1):
        updates.update({c: getattr(later, c) for c in ("detected_pos", *_DETECTION)})
    firsts = [t for t in (before.detected_at, later.detected_at) if t is not None]
    updates["detected_at"] = min(firsts) if firsts else None
    if later.last_pos > before.last_pos:
        updates.update(
            {
                c: getattr(later, c)
                for c in ("last_pos", "last_kind", "last_time", "last_resolution", "last_note")
            }
        )
    if later.owner_pos is not None and later.owner_pos > (before.owner_pos or -1):
        updates.update(owner_pos=later.owner_pos, owner=later.owner)
    return replace(before, **updates)  # type: ignore[arg-type]


def fold(events: Iterable[tuple[CloudEvent, int]]) -> list[QueueRow]:
    rows: dict[str, QueueRow] = {}
    for event, offset in events:
        own = _own(event, offset)
        if own is None:
            continue
        before = rows.get(own.mismatch_id)
        rows[own.mismatch_id] = own if before is None else merge(before, own)
    return list(rows.values())
