"""The timeline read model: every fact and output by the ids it concerns.

One row per event and id it names (order, invoice, payment, payout, bank line, customer,
mismatch, refund, chargeback, credit note), with its time, type, a one-line summary, the
acting user of a manual event and the causation id, so that the workbench's search can
show who or what changed what, when and why. `timeline_rows` is the pure part; the
`TimelineRunner` is a projection runner of its own (own consumer group and offsets, the
same exactly-once protocol as the read models: rows, claimed event ids and offsets in one
transaction), over every topic of the contract except the clock and the dead letters. The
same runner keeps the exception queue's state (exception_queue.py) from the mismatch events.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from confluent_kafka import Message

from projections import exception_queue
from projections.redaction import mask_ibans
from projections.runner import ProjectionRunner
from schemas.base import CloudEvent
from schemas.events import ALL_EVENTS, PayoutReportedData, type_name
from schemas.topics import (
    BANK_LINES,
    CREDIT,
    CUSTOMERS,
    INVOICES,
    MATCHES,
    MISMATCHES,
    ORDERS,
    PAYMENTS,
    REFUNDS,
    SETTLEMENTS,
    Topic,
)

PROJECTION = "timeline"
TOPICS: tuple[Topic, ...] = (
    *(CUSTOMERS, ORDERS, INVOICES, PAYMENTS, REFUNDS, SETTLEMENTS, BANK_LINES),
    *(MATCHES, MISMATCHES, CREDIT),
)
PROJECTED_TYPES = frozenset(type_name(t) for t in ALL_EVENTS) - {
    "o2c.day.closed.v1",
    "o2c.event.rejected.v1",
}
COLUMNS = (
    "ref_id",
    "ref_kind",
    "event_id",
    "event_time",
    "type",
    "summary",
    "by_user",
    "causation_id",
    "source",
    "pos",
)

# The data fields that name a thing, and what the thing is.
REF_FIELDS = {
    "order_id": "order",
    "invoice_id": "invoice",
    "credit_note_id": "credit_note",
    "payment_id": "payment",
    "refund_id": "refund",
    "chargeback_id": "chargeback",
    "payout_id": "payout",
    "line_id": "line",
    "customer_id": "customer",
    "mismatch_id": "mismatch",
}
_AMOUNT_FIELDS = (
    *("amount", "total_amount", "net_amount", "open_balance", "exposure"),
    *("difference", "actual"),
)
_DETAIL_FIELDS = (
    "reason",
    "status",
    "method",
    "channel",
    "provider",
    "outcome",
    "resolution",
    "assignee",
    "note",
)

Row = tuple[object, ...]


@functools.cache
def _has(cls: type, names: tuple[str, ...]) -> tuple[str, ...]:
    """Those of `names` an instance of `cls` can have. Asking a pydantic model for a field
    it lacks goes through its __getattr__ and an AttributeError: that was a third of the
    timeline's time, for the ten ref and sixteen summary fields asked of every event."""
    fields = getattr(cls, "model_fields", None)
    if fields is None:
        return names
    return tuple(n for n in names if n in fields or hasattr(cls, n))


_REF_NAMES = tuple(REF_FIELDS)


def refs(event: CloudEvent) -> list[tuple[str, str]]:
    """(kind, id) of everything the event names, in a stable order, each once."""
    found: dict[tuple[str, str], None] = {}
    data = event.data
    for name in _has(type(data), _REF_NAMES):
        value = getattr(data, name, None)
        if value:
            found[(REF_FIELDS[name], str(value))] = None
    if isinstance(data, PayoutReportedData):  # a payout names every payment it pays out
        for item in data.items:
            found[("payment", item.payment_id)] = None
            if item.order_id:
                found[("order", item.order_id)] = None
    return list(found)


def summary(event: CloudEvent) -> str:
    """E.g. "payment captured: 129.90 CNY, method alipay"."""
    data = event.data
    words = event.type.removeprefix("o2c.").removesuffix(".v1").replace("_", " ").split(".")
    head = " ".join(words)
    parts: list[str] = []
    currency = getattr(data, "currency", None)
    for name in _has(type(data), _AMOUNT_FIELDS):
        amount = getattr(data, name, None)
        if isinstance(amount, Decimal):
            label = "" if name == "amount" else name.replace("_", " ") + " "
            parts.append(f"{label}{amount} {currency or ''}".rstrip())
            break
    for name in _has(type(data), _DETAIL_FIELDS):
        detail: Any = getattr(data, name, None)
        if detail:
            text = str(getattr(detail, "value", detail))
            # A note is free text: an IBAN pasted there is masked (redaction.py).
            parts.append(f"{name} {mask_ibans(text) if name == 'note' else text}")
    text = f"{head}: {', '.join(parts)}" if parts else head
    return text if len(text) <= 300 else text[:299] + "…"


def timeline_rows(event: CloudEvent, offset: int) -> list[Row]:
    by = getattr(event.data, "by", None)
    line = summary(event)
    return [
        (ref_id, kind, event.id, event.time, event.type, line, by, event.causationid,
         event.source, offset)
        for kind, ref_id in refs(event)
    ]  # fmt: skip


class TimelineRunner(ProjectionRunner):
    topics = TOPICS
    projected_types = PROJECTED_TYPES
    observed = False  # its batches are not the read models' (the projections' metrics)

    def __init__(self, bootstrap: str, conninfo: str, schema: str, **options: Any) -> None:
        options.setdefault("projection", PROJECTION)
        options.setdefault("group_id", f"o2c-projection-{schema}-{PROJECTION}")
        options["publish_alerts"] = False  # the read models' runner raises the alerts
        # …and computes the closed days: taking its deferred days from here would race it.
        options["materialise_days"] = False
        super().__init__(bootstrap, conninfo, schema, **options)

    def _decode(
        self, messages: Sequence[Message]
    ) -> tuple[list[tuple[CloudEvent, int]], list[CloudEvent]]:
        # An invalid message has no place on a timeline, and the worker (for the inputs) or
        # the read models' runner has sent it to the dead letters already: not a third copy.
        events, _letters = super()._decode(messages)
        return events, []

    def write(
        self, events: list[tuple[CloudEvent, int]], *, catching_up: bool
    ) -> tuple[list[date], int]:
        cur = self.store.conn.cursor()
        self.store._copy(cur, "timeline", COLUMNS, rows_of(events))
        queue = exception_queue.fold(events)
        if queue:
            cur.execute(exception_queue.STAGE)  # per connection; a reconnect needs it again
            self.store._copy(
                cur, "stage_exception_queue", exception_queue.COLUMNS, [r.row() for r in queue]
            )
            cur.execute(exception_queue.UPSERT.encode())
        return [], 0


def rows_of(events: Iterable[tuple[CloudEvent, int]]) -> list[Row]:
    return [row for event, offset in events for row in timeline_rows(event, offset)]
