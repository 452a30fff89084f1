"""The suspense account of one customer: bank lines that name nothing, and the customer's
open items they might pay.

`apply(state, event, rules, payer_confidence) -> (state, outputs)` over the customer's
`bank_line.booked` (routed here once the payer was resolved) and `balance.changed` (the
ledger's view of each of the customer's orders). After every event each suspended line is
tried against the open items (candidates.propose): a unique answer is applied
(`payment.applied` per order) and any mismatch the line had is resolved; several answers
are `AMBIGUOUS_BANK_LINE` with ranked suggestions; none is `UNMATCHED_BANK_LINE`. So a line
that becomes matchable when new open items arrive is applied then.

A person may apply a suspended line by hand (the workbench's "apply suggestion"): that
manual `payment.applied` names the customer and reaches this account as a copy. The line
then leaves suspense as if this processor had applied it, so it is never applied again.

Money this processor has applied but the ledger has not yet reported is held as pending
against its order, so that two lines cannot both take the same open item; it is released
by the `balance.changed` the application caused (its causationid).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
from pydantic import TypeAdapter

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.events import ReasonCode
from services.domain import rows
from services.domain.candidates import Candidate, OpenItem, SearchBounds, propose
from services.domain.findings import Finding, OpenFinding, reconcile
from services.domain.folding import evolve
from services.domain.keyed import Keyed, changed_entries
from services.domain.outputs import output, trusted
from services.domain.policy import Policy
from services.domain.stored import StateFormatError

ONE = Decimal(1)
ZERO = Decimal(0)
OPEN_STATUSES = frozenset({"open", "partially_paid"})
MAX_SUGGESTIONS = 5


@dataclass(frozen=True, slots=True)
class SuspendedLine:
    event_id: str
    line_id: str
    amount: Decimal
    currency: str
    booking_date: date
    payer_confidence: Decimal


@dataclass(frozen=True, slots=True)
class Pending:
    order_id: str
    application_id: str  # the id of the payment.applied (this processor's, or a person's)
    amount: Decimal


@dataclass(frozen=True)
class SuspenseRules:
    policy: Policy = field(default_factory=Policy)
    bounds: SearchBounds = field(default_factory=SearchBounds)


# The default of a state's map: Keyed never changes once built, so one serves all.
_NO_ITEMS: Keyed[OpenItem] = Keyed()


@dataclass(frozen=True, slots=True, init=False)
class Suspense:
    customer_id: str
    # Open items by order id: a balance.changed replaces one without copying the others.
    items: Keyed[OpenItem] = field(default_factory=Keyed)
    lines: tuple[SuspendedLine, ...] = ()  # by booking date, then line id
    pending: tuple[Pending, ...] = ()
    applied_lines: frozenset[str] = frozenset()
    applied_event_ids: frozenset[str] = frozenset()
    open_mismatches: tuple[OpenFinding, ...] = ()

    # Written out, not generated (init=False): see services/domain/native.py, "__init__".
    def __init__(
        self,
        customer_id: str,
        items: Keyed[OpenItem] = _NO_ITEMS,
        lines: tuple[SuspendedLine, ...] = (),
        pending: tuple[Pending, ...] = (),
        applied_lines: frozenset[str] = frozenset(),
        applied_event_ids: frozenset[str] = frozenset(),
        open_mismatches: tuple[OpenFinding, ...] = (),
    ) -> None:
        object.__setattr__(self, "customer_id", customer_id)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "lines", lines)
        object.__setattr__(self, "pending", pending)
        object.__setattr__(self, "applied_lines", applied_lines)
        object.__setattr__(self, "applied_event_ids", applied_event_ids)
        object.__setattr__(self, "open_mismatches", open_mismatches)


def new_suspense(customer_id: str) -> Suspense:
    return Suspense(customer_id)


def apply(
    state: Suspense, event: CloudEvent, rules: SuspenseRules, payer_confidence: Decimal = ONE
) -> tuple[Suspense, list[CloudEvent]]:
    if event.id in state.applied_event_ids:
        return state, []
    if isinstance(event, ev.PaymentApplied):
        updated = applied_by_hand(state, event)
        if updated is state:
            return state, []
    else:
        updated = _record(state, event, payer_confidence)
    if isinstance(event, ev.BankLineBooked):
        # A balance.changed states an order's whole balance, so applying it again changes
        # nothing; only lines (and manual applications) are remembered, or a busy
        # customer's state would grow forever.
        updated = evolve(updated, applied_event_ids=state.applied_event_ids | {event.id})
    if not updated.lines and not updated.open_mismatches:
        return updated, []  # nothing in suspense: an open item changed, no line waits for it
    return settle_lines(updated, event, rules)


def _record(state: Suspense, event: CloudEvent, payer_confidence: Decimal) -> Suspense:
    match event:
        case ev.BankLineBooked(data=d):
            known = state.applied_lines | {line.line_id for line in state.lines}
            if d.line_id in known:
                return state  # the same line resent under another event id
            line = SuspendedLine(
                event.id, d.line_id, d.amount, d.currency, d.booking_date, payer_confidence
            )
            lines = sorted((*state.lines, line), key=lambda x: (x.booking_date, x.line_id))
            return evolve(state, lines=tuple(lines))
        case ev.BalanceChanged(data=d):
            item = None
            if d.status in OPEN_STATUSES and d.open_balance > 0:
                item = OpenItem(d.order_id, d.currency, d.open_balance, d.due_date)
            pending = state.pending
            if any(p.application_id == event.causationid for p in pending):
                pending = tuple(p for p in pending if p.application_id != event.causationid)
            if item == state.items.get(d.order_id) and pending is state.pending:
                # The same object back, so the worker writes nothing: most balances of a
                # retail customer (paid at once, no line waiting) change no open item.
                return state
            if item is None:
                items = state.items.remove(d.order_id)
            else:
                items = state.items.set(d.order_id, item)
            return evolve(state, items=items, pending=pending)
    return state


def applied_by_hand(state: Suspense, event: ev.PaymentApplied) -> Suspense:
    """A person applied (part of) a line: the line leaves suspense and its open finding is
    forgotten without a resolution of ours (the person's manual `mismatch.resolved` is the
    resolution). The money is held against the order until the ledger reports it, as for
    our own applications. One event per order of a combination: each adds its hold. An
    application that arrives before its line marks the line applied, so the line, when it
    comes, is not suspended. Applications of other methods are this processor's own or
    name an order outright: nothing here to change."""
    d = event.data
    if d.method != "manual" or not d.line_id:
        return state
    line_id = d.line_id
    return evolve(
        state,
        lines=tuple(line for line in state.lines if line.line_id != line_id),
        pending=(*state.pending, Pending(d.order_id, event.id, d.amount)),
        applied_lines=state.applied_lines | {line_id},
        applied_event_ids=state.applied_event_ids | {event.id},
        open_mismatches=tuple(m for m in state.open_mismatches if m.line_id != line_id),
    )


def available(state: Suspense) -> list[OpenItem]:
    """Open items less what this processor applied and the ledger has not reported yet."""
    held: dict[str, Decimal] = {}
    for p in state.pending:
        held[p.order_id] = held.get(p.order_id, ZERO) + p.amount
    left = [
        replace(i, open_amount=i.open_amount - held.get(i.order_id, ZERO))
        for i in state.items.sorted_values()
    ]
    return [i for i in left if i.open_amount > 0]


def settle_lines(
    state: Suspense, cause: CloudEvent, rules: SuspenseRules
) -> tuple[Suspense, list[CloudEvent]]:
    items = available(state)
    outputs: list[CloudEvent] = []
    findings: list[Finding] = []
    still_suspended: list[SuspendedLine] = []
    pending = list(state.pending)
    applied = set(state.applied_lines)
    for line in state.lines:
        proposals = propose(
            items,
            line.amount,
            line.currency,
            line.booking_date,
            rules.policy.tolerance(line.currency),
            rules.bounds,
            line.payer_confidence,
        )
        answer = proposals.unique
        if answer is not None:
            for application in _applications(line, answer, cause):
                outputs.append(application)
                d = application.data
                pending.append(Pending(d.order_id, application.id, d.amount))
            taken = set(answer.order_ids)
            items = [i for i in items if i.order_id not in taken]
            applied.add(line.line_id)
            continue
        still_suspended.append(line)
        findings.append(_finding(state.customer_id, line, proposals.candidates))
    open_now, changes = reconcile(state.open_mismatches, findings, cause)
    outputs += changes
    updated = evolve(
        state,
        lines=tuple(still_suspended),
        pending=tuple(pending),
        applied_lines=frozenset(applied),
        open_mismatches=open_now,
    )
    return updated, outputs


def _applications(
    line: SuspendedLine, answer: Candidate, cause: CloudEvent
) -> list[ev.PaymentApplied]:
    """One payment.applied per order: each item's open amount, the last (newest) taking
    the difference within tolerance, which the ledger then writes off."""
    amounts = [i.open_amount for i in answer.items]
    amounts[-1] += line.amount - sum(amounts, ZERO)
    return [
        output(
            ev.PaymentApplied,
            trusted(
                ev.PaymentAppliedData,
                payment_id=None,
                line_id=line.line_id,
                order_id=item.order_id,
                amount=max(ZERO, amount),
                currency=line.currency,
                method=answer.method,
                confidence=answer.confidence,
            ),
            cause,
            f"{line.line_id}/{item.order_id}",
        )
        for item, amount in zip(answer.items, amounts, strict=True)
    ]


def _finding(customer_id: str, line: SuspendedLine, candidates: Sequence[Candidate]) -> Finding:
    reason = ReasonCode.AMBIGUOUS_BANK_LINE if candidates else ReasonCode.UNMATCHED_BANK_LINE
    suggestions = tuple(
        ev.Suggestion(
            order_ids=c.order_ids, amount=c.total, method=c.method, confidence=c.confidence
        )
        for c in candidates[:MAX_SUGGESTIONS]
    )
    return Finding(
        reason,
        line.line_id,
        "",
        line.currency,
        actual=line.amount,
        line_id=line.line_id,
        customer_id=customer_id,
        suggestions=suggestions,
    )


# --- storage ------------------------------------------------------------------------------

# suspense/2: one JSON array of rows (services/domain/rows.py), sets sorted so that a state
# is the same bytes in every process; suspense/1 (the dataclass as JSON objects) still loads.
STATE_FORMAT = b"suspense/2\n"
LEGACY_FORMAT = b"suspense/1\n"
APART_FORMAT = b"suspense/3\n"


_DOCUMENT: TypeAdapter[tuple[Any, ...]] = TypeAdapter(
    rows.tuple_of(
        str,
        tuple[rows.row_type(OpenItem), ...],  # type: ignore[misc]
        tuple[rows.row_type(SuspendedLine), ...],  # type: ignore[misc]
        tuple[rows.row_type(Pending), ...],  # type: ignore[misc]
        tuple[str, ...],
        tuple[str, ...],
        tuple[rows.row_type(OpenFinding), ...],  # type: ignore[misc]
    )
)


def _legacy_rows(stored: bytes) -> tuple[Any, ...]:
    """suspense/1 (the state as pydantic wrote the dataclass: JSON objects, each field
    named, in declaration order) as the suspense/2 document, read by the same rows:
    pydantic cannot build the dataclasses itself once mypyc compiled them (native.py)."""
    old = orjson.loads(stored)

    def rows_of(name: str) -> list[list[Any]]:
        return [list(fact.values()) for fact in old.get(name, ())]

    return (
        old["customer_id"],
        rows_of("items"),
        rows_of("lines"),
        rows_of("pending"),
        old.get("applied_lines", []),
        old.get("applied_event_ids", []),
        rows_of("open_mismatches"),
    )


def dump_state(state: Suspense) -> bytes:
    document = (
        state.customer_id,
        rows.rows(state.items.sorted_values()),
        rows.rows(state.lines),
        rows.rows(state.pending),
        sorted(state.applied_lines),
        sorted(state.applied_event_ids),
        rows.rows(state.open_mismatches),
    )
    return STATE_FORMAT + rows.dumps(document)


def load_state(raw: bytes) -> Suspense:
    if raw.startswith(LEGACY_FORMAT):
        document = _DOCUMENT.validate_python(_legacy_rows(raw[len(LEGACY_FORMAT) :]))
    elif raw.startswith(STATE_FORMAT):
        document = _DOCUMENT.validate_json(raw[len(STATE_FORMAT) :])
    else:
        raise StateFormatError(
            f"the suspense table holds state in another format than this version reads "
            f"({raw[:12]!r}…, expected {STATE_FORMAT!r} or {LEGACY_FORMAT!r}); start the "
            "worker with a new O2C_APP_ID to rebuild it from the input topics"
        )
    customer_id, items, lines, pending, applied_lines, applied_ids, open_mismatches = document
    return Suspense(
        customer_id,
        Keyed((i.order_id, i) for i in items),
        lines,
        pending,
        frozenset(applied_lines),
        frozenset(applied_ids),
        open_mismatches,
    )


# suspense/3, the worker's: the suspense/2 document without its open items, each item a
# record of its own (its row, under the order id; see services/runtime/store.py, Entries),
# so a balance.changed writes one item, not the customer's thousands.


def dump_head(state: Suspense) -> bytes:
    document: tuple[Any, ...] = (
        state.customer_id,
        [],
        rows.rows(state.lines),
        rows.rows(state.pending),
        sorted(state.applied_lines),
        sorted(state.applied_event_ids),
        rows.rows(state.open_mismatches),
    )
    return APART_FORMAT + rows.dumps(document)


def changed_items(before: Suspense | None, after: Suspense) -> list[tuple[str, bytes | None]]:
    """The open items' records to write (None: to delete) once `before` became `after`."""
    changed = changed_entries(None if before is None else before.items, after.items)
    return [(order_id, None if i is None else rows.dumps(rows.row(i))) for order_id, i in changed]


def stored_apart(head: bytes) -> bool:
    return head.startswith(APART_FORMAT)


def load_apart(head: bytes, items: Iterable[tuple[str, bytes]]) -> Suspense:
    """A state from its head and its items' records; a head of an older format holds its
    items itself (and has no records)."""
    if not stored_apart(head):
        return load_state(head)
    document = _DOCUMENT.validate_json(head[len(APART_FORMAT) :])
    customer_id, _, lines, pending, applied_lines, applied_ids, open_mismatches = document
    records = b",".join(raw for _, raw in items)
    open_items = _ITEMS.validate_json(b"[" + records + b"]")  # one call for them all
    return Suspense(
        customer_id,
        Keyed((i.order_id, i) for i in open_items),
        lines,
        pending,
        frozenset(applied_lines),
        frozenset(applied_ids),
        open_mismatches,
    )


_ITEMS: TypeAdapter[tuple[OpenItem, ...]] = TypeAdapter(
    tuple[rows.row_type(OpenItem), ...]  # type: ignore[misc, arg-type]
)
