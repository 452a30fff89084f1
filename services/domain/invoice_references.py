"""Bank lines that name an invoice, joined with that invoice to find its order.

`apply(state, event, rules, today) -> (state, outputs)` for one invoice number, over the
`invoice.issued` of that number and the bank lines naming it (both re-keyed by invoice id),
and `day.closed`. Once both are known each line becomes `payment.applied` (method
`reference`) to the invoice's order; a line whose invoice has not arrived `wait_days`
business days after its booking date is `UNMATCHED_BANK_LINE`, resolved if the invoice
arrives later.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.events import ReasonCode
from services.domain.findings import Finding, OpenFinding, reconcile
from services.domain.folding import apply_once, recording_ids
from services.domain.outputs import output, trusted
from services.domain.stored import SortedIds, StoredState


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    event_id: str
    order_id: str
    customer_id: str


@dataclass(frozen=True, slots=True)
class NamingLine:
    event_id: str
    line_id: str
    amount: Decimal
    currency: str
    booking_date: date


@dataclass(frozen=True)
class InvoiceRules:
    wait_days: int = 2


@dataclass(frozen=True, slots=True)
class InvoiceReferences:
    invoice_id: str
    invoice: InvoiceFacts | None = None
    waiting: tuple[NamingLine, ...] = ()  # lines naming the invoice before it was known
    applied_lines: SortedIds = frozenset()
    applied_event_ids: SortedIds = field(default_factory=frozenset)
    open_mismatches: tuple[OpenFinding, ...] = ()


def new_references(invoice_id: str) -> InvoiceReferences:
    return InvoiceReferences(invoice_id)


def apply(
    state: InvoiceReferences, event: CloudEvent, rules: InvoiceRules, today: date | None
) -> tuple[InvoiceReferences, list[CloudEvent]]:
    def report(
        s: InvoiceReferences, e: CloudEvent, day: date | None
    ) -> tuple[InvoiceReferences, list[CloudEvent]]:
        return _report(s, e, rules, day)

    return apply_once(state, event, today, _RECORD, report, [])


def _record(state: InvoiceReferences, event: CloudEvent) -> InvoiceReferences:
    match event:
        case ev.InvoiceIssued(data=d):
            if state.invoice is not None and state.invoice.event_id <= event.id:
                return state
            return replace(state, invoice=InvoiceFacts(event.id, d.order_id, d.customer_id))
        case ev.BankLineBooked(data=d):
            known = state.applied_lines | {line.line_id for line in state.waiting}
            if d.line_id in known:
                return state
            line = NamingLine(event.id, d.line_id, d.amount, d.currency, d.booking_date)
            waiting = sorted((*state.waiting, line), key=lambda x: x.line_id)
            return replace(state, waiting=tuple(waiting))
    return state


_RECORD = recording_ids(_record)


def _report(
    state: InvoiceReferences, cause: CloudEvent, rules: InvoiceRules, today: date | None
) -> tuple[InvoiceReferences, list[CloudEvent]]:
    outputs: list[CloudEvent] = []
    if state.invoice is not None and state.waiting:
        order_id = state.invoice.order_id
        outputs += [_applied(line, order_id, cause) for line in state.waiting]
        applied = state.applied_lines | {line.line_id for line in state.waiting}
        state = replace(state, waiting=(), applied_lines=applied)
    due = timedelta(days=rules.wait_days)
    findings = [
        Finding(
            ReasonCode.UNMATCHED_BANK_LINE,
            line.line_id,
            "",
            line.currency,
            actual=line.amount,
            line_id=line.line_id,
        )
        for line in state.waiting
        if today is not None and today >= line.booking_date + due
    ]
    open_now, changes = reconcile(state.open_mismatches, findings, cause)
    if open_now != state.open_mismatches:
        state = replace(state, open_mismatches=open_now)
    return state, outputs + changes


def _applied(line: NamingLine, order_id: str, cause: CloudEvent) -> ev.PaymentApplied:
    data = trusted(
        ev.PaymentAppliedData,
        payment_id=None,
        line_id=line.line_id,
        order_id=order_id,
        amount=max(line.amount, Decimal(0)),
        currency=line.currency,
        method="reference",
        confidence=Decimal(1),
    )
    return output(ev.PaymentApplied, data, cause, f"{line.line_id}/{order_id}")


# --- storage ------------------------------------------------------------------------------

STATE_FORMAT = b"invoice-references/1\n"
_STORED = StoredState(InvoiceReferences, STATE_FORMAT, "invoice references")


def dump_state(state: InvoiceReferences) -> bytes:
    return _STORED.dump(state)


def load_state(raw: bytes) -> InvoiceReferences:
    return _STORED.load(raw)
