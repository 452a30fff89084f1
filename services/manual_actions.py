"""What a person does to an exception, as the events that say so: one code path for
`o2c exceptions assign/resolve` and the workbench (`o2c web`).

Each function takes the exception as the `exceptions` view gives it (a mapping of its
columns) and returns events ready to publish; `publish` sends them through the topic
registry (each event's type names its topic). A person's action happens now, so its time
is the wall clock; `by` names the person in the event (the contract's optional field).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.events import type_name
from services.kafka_io import EventProducer
from services.runtime.edge import card_masking

KEY_FIELDS = ("order_id", "payment_id", "payout_id", "line_id", "customer_id")

Exception_ = Mapping[str, Any]


class ActionRefused(ValueError):
    """The action does not fit the exception as it stands (already resolved, say)."""


E = TypeVar("E", bound=CloudEvent)


def _keys(found: Exception_) -> dict[str, Any]:
    return {k: found.get(k) for k in KEY_FIELDS}


def _event(cls: type[E], data: Any, *, source: str, now: datetime) -> E:
    """A person's action as an event of its own: a fresh id, and the time it was done."""
    return cls(
        specversion="1.0",
        id=str(uuid.uuid4()),
        source=source,
        type=type_name(cls),
        time=now,
        data=data,
    )


def assignment(
    found: Exception_, assignee: str, *, by: str, source: str, now: datetime, note: str | None
) -> ev.MismatchAssigned:
    if found["status"] == "resolved":
        raise ActionRefused(f"{found['mismatch_id']} is resolved; it cannot be assigned")
    return _event(
        ev.MismatchAssigned,
        ev.MismatchAssignedData(
            mismatch_id=found["mismatch_id"],
            assignee=assignee,
            note=note,
            assigned_at=now,
            by=by,
            **_keys(found),
        ),
        source=source,
        now=now,
    )


def resolution(
    found: Exception_, note: str, *, by: str, source: str, now: datetime
) -> ev.MismatchResolved:
    if found["status"] == "resolved":
        raise ActionRefused(f"{found['mismatch_id']} is already resolved")
    if not note.strip():
        raise ActionRefused("a manual resolution needs a note")
    return _event(
        ev.MismatchResolved,
        ev.MismatchResolvedData(
            mismatch_id=found["mismatch_id"],
            resolution="manual",
            note=note,
            reason=found["reason"],
            resolved_at=now,
            by=by,
            **_keys(found),
        ),
        source=source,
        now=now,
    )


def suggestion_applied(
    found: Exception_,
    suggestion: ev.Suggestion,
    open_amounts: Mapping[str, Decimal],
    *,
    by: str,
    source: str,
    now: datetime,
) -> list[CloudEvent]:
    """Apply one suggestion of an AMBIGUOUS_BANK_LINE: a `payment.applied` (method
    `manual`) per order of the suggestion, each taking its open amount and the last the
    rest of the line, as the suspense processor splits a combination, naming the customer
    whose suspense account holds the line (so that it is copied there and the line is not
    applied again); then the mismatch's manual resolution, which names the suggestion."""
    if found["status"] == "resolved":
        raise ActionRefused(f"{found['mismatch_id']} is already resolved")
    if found["reason"] != ev.ReasonCode.AMBIGUOUS_BANK_LINE.value:
        raise ActionRefused(f"{found['mismatch_id']} is not an AMBIGUOUS_BANK_LINE")
    line_id, line_amount = found.get("line_id"), found.get("actual")
    if line_id is None or line_amount is None:
        raise ActionRefused(f"{found['mismatch_id']} names no bank line and amount")
    missing = [o for o in suggestion.order_ids if o not in open_amounts]
    if missing:
        raise ActionRefused(f"orders no longer open: {', '.join(missing)}")
    amounts = [open_amounts[o] for o in suggestion.order_ids]
    amounts[-1] += Decimal(line_amount) - sum(amounts, Decimal(0))
    applied: list[CloudEvent] = [
        _event(
            ev.PaymentApplied,
            ev.PaymentAppliedData(
                line_id=line_id,
                order_id=order_id,
                amount=max(Decimal(0), amount),
                currency=found["currency"],
                method="manual",
                confidence=Decimal(1),
                by=by,
                # Copied to that customer's suspense account, which then lets go of the line.
                customer_id=found.get("customer_id"),
            ),
            source=source,
            now=now,
        )
        for order_id, amount in zip(suggestion.order_ids, amounts, strict=True)
    ]
    note = f"applied to {', '.join(suggestion.order_ids)} ({suggestion.method})"
    return [*applied, resolution(found, note, by=by, source=source, now=now)]


def publish(out: EventProducer, events: Sequence[CloudEvent]) -> None:
    """Send `events` to their topics and wait until the broker has acknowledged each.
    A card number a person typed into a note is masked first: we are the writer here."""
    masking = card_masking()
    for event in events:
        out.send(masking.event(event)[0])
    out.flush()
