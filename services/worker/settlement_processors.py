"""The settlement processors: shells around the pure cores of bank-line routing
(services.domain.bank_routing), payouts (services.domain.payouts) and the suspense account
(services.domain.suspense).

    o2c.bank-lines ──router──► payment.applied (reference) / UNMATCHED_BANK_LINE
                       ├──► o2c.internal.bank-lines-by-payout ──► payout processor
                       └──► o2c.internal.bank-lines-by-customer ─► suspense processor
    o2c.settlements ─────────────────────────────────────────────► payout processor
                       └──► o2c.internal.bank-lines-by-invoice ─► invoice-reference processor
    o2c.invoices (invoice.issued) ──► o2c.internal.invoices-by-number ─► invoice-reference
    o2c.matches (balance.changed) ──► o2c.internal.balances-by-customer ► suspense processor
    o2c.matches (manual payment.applied naming a customer) ──► o2c.internal.bank-lines-by-
        customer ─► suspense processor (the line a person applied leaves suspense)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.events import type_name
from schemas.topics import (
    BALANCES_BY_CUSTOMER,
    BANK_LINES,
    BANK_LINES_BY_CUSTOMER,
    BANK_LINES_BY_INVOICE,
    BANK_LINES_BY_PAYOUT,
    CLOCK_FANOUT,
    INVOICES,
    INVOICES_BY_NUMBER,
    SETTLEMENTS,
)
from services import metrics
from services.domain import bank_routing, invoice_references, payouts, suspense
from services.domain.bank_routing import IdPatterns, RoutingRules
from services.domain.candidates import SearchBounds
from services.runtime.edge import RawMessage, header
from services.runtime.processor import ProcessorSpec, Task
from services.runtime.store import Codec, Entries, StoreSpec
from services.settings import Settings
from services.worker.customer_directory import CustomerDirectory
from services.worker.keyed_processor import Core, Keyed

log = logging.getLogger(__name__)

PAYER_CONFIDENCE_HEADER = "o2c-payer-confidence"
BALANCE_CHANGED = type_name(ev.BalanceChanged)
INVOICE_ISSUED = type_name(ev.InvoiceIssued)

ROUTER_INPUTS = (BANK_LINES,)
PAYOUT_INPUTS = (SETTLEMENTS, BANK_LINES_BY_PAYOUT, CLOCK_FANOUT)
SUSPENSE_INPUTS = (BANK_LINES_BY_CUSTOMER, BALANCES_BY_CUSTOMER)
INVOICE_REFERENCE_INPUTS = (INVOICES_BY_NUMBER, BANK_LINES_BY_INVOICE, CLOCK_FANOUT)

# --- stateless: routing ------------------------------------------------------------------


class BankLineRouter:
    def __init__(self, directory: CustomerDirectory, settings: Settings) -> None:
        self.customers = directory
        self.payouts = IdPatterns(settings.payout_patterns)
        self.orders = IdPatterns(settings.reference_patterns)
        self.invoices = IdPatterns(settings.invoice_patterns)
        self.invoice_numbers = IdPatterns(settings.invoice_number_patterns)
        self.threshold = settings.payer_similarity
        self._rules = self.rules()

    def rules(self) -> RoutingRules:
        return RoutingRules(
            self.payouts,
            self.orders,
            self.invoices,
            self.invoice_numbers,
            self.customers.directory,
            self.threshold,
        )

    def catch_up(self) -> None:
        """Before each batch: every customer published before it is known."""
        self.customers.catch_up()
        self._rules = self.rules()

    def handle(self, task: Task, message: RawMessage, event: CloudEvent) -> None:
        if not isinstance(event, ev.BankLineBooked):
            return
        metrics.EVENTS_IN.labels("bank-router", event.type).inc()
        value = message.value or b""
        kind = {"ce_type": event.type.encode()}
        match bank_routing.route(event.data, self._rules):
            case bank_routing.ToPayout(payout_id):
                task.send_raw(BANK_LINES_BY_PAYOUT, payout_id, value, kind)
            case bank_routing.ToOrder(order_id):
                task.send([bank_routing.applied_by_reference(event, order_id)])
            case bank_routing.ToInvoice(invoice_id):
                task.send_raw(BANK_LINES_BY_INVOICE, invoice_id, value, kind)
            case bank_routing.ToCustomer(payer):
                confidence = {PAYER_CONFIDENCE_HEADER: str(payer.confidence).encode()}
                task.send_raw(BANK_LINES_BY_CUSTOMER, payer.customer_id, value, kind | confidence)
            case bank_routing.UnknownPayer():
                task.send([bank_routing.unmatched_line(event)])
            case bank_routing.Ignored(why):
                log.debug("bank line %s not matched: %s", event.data.line_id, why)


class InvoiceRepartitioner:
    """invoice.issued re-keyed by invoice id for the invoice-reference processor. (The
    ledger's balance.changed reaches the suspense processor as a copy its writers make.)"""

    def handle(self, task: Task, message: RawMessage, event: CloudEvent) -> None:
        if isinstance(event, ev.InvoiceIssued):
            kind = {"ce_type": event.type.encode()}
            task.send_raw(INVOICES_BY_NUMBER, event.data.invoice_id, message.value or b"", kind)


# --- stateful: payouts and suspense --------------------------------------------------------


def payout_core(settings: Settings) -> Core[payouts.PayoutState]:
    rules = payouts.PayoutRules(settings.policy(), settings.payout_bank_days)

    def apply(
        state: payouts.PayoutState, event: CloudEvent, _m: RawMessage, today: date | None
    ) -> tuple[payouts.PayoutState, Sequence[CloudEvent]]:
        return payouts.apply(state, event, rules, today)

    return Core("payout", payouts.new_payout, apply)


def suspense_core(settings: Settings) -> Core[suspense.Suspense]:
    bounds = SearchBounds(
        max_items=settings.combination_max_items,
        max_steps=settings.combination_max_steps,
        window_days=settings.suspense_window_days,
    )
    rules = suspense.SuspenseRules(settings.policy(), bounds)

    def apply(
        state: suspense.Suspense, event: CloudEvent, message: RawMessage, _today: date | None
    ) -> tuple[suspense.Suspense, Sequence[CloudEvent]]:
        if isinstance(event, ev.DayClosed):
            return state, []  # matching a line does not depend on the business day
        return suspense.apply(state, event, rules, payer_confidence(message))

    return Core("suspense", suspense.new_suspense, apply)


def invoice_reference_core(settings: Settings) -> Core[invoice_references.InvoiceReferences]:
    rules = invoice_references.InvoiceRules(settings.payout_bank_days)

    def apply(
        state: invoice_references.InvoiceReferences,
        event: CloudEvent,
        _m: RawMessage,
        today: date | None,
    ) -> tuple[invoice_references.InvoiceReferences, Sequence[CloudEvent]]:
        return invoice_references.apply(state, event, rules, today)

    return Core("invoice-references", invoice_references.new_references, apply)


def payer_confidence(message: RawMessage) -> Decimal:
    raw = header(message, PAYER_CONFIDENCE_HEADER)
    try:
        return Decimal(raw) if raw else Decimal(1)
    except InvalidOperation:
        return Decimal(1)


# --- wiring ------------------------------------------------------------------------------

# A customer's open items stored one record each: a balance.changed writes one item's record.
SUSPENSE_APART = Entries(
    suspense.dump_head, suspense.changed_items, suspense.load_apart, suspense.stored_apart
)


def settlement_specs(settings: Settings) -> list[ProcessorSpec[object]]:
    """The bank-line router, the invoice repartition, and the payout, suspense and
    invoice-reference processors."""
    directory = CustomerDirectory(settings.kafka_bootstrap)
    router = BankLineRouter(directory, settings)

    def start_and_catch_up() -> None:
        directory.start()
        router.catch_up()

    stateful: list[ProcessorSpec[object]] = [
        ProcessorSpec(
            name,
            inputs,
            StoreSpec(store, Codec(load, dump, apart)),  # type: ignore[arg-type]
            (lambda c=core: Keyed(c)),  # type: ignore[misc]
        )
        for name, inputs, store, core, load, dump, apart in (
            (
                "payouts",
                PAYOUT_INPUTS,
                "payouts",
                payout_core(settings),
                payouts.load_state,
                payouts.dump_state,
                None,
            ),
            (
                "suspense",
                SUSPENSE_INPUTS,
                "suspense",
                suspense_core(settings),
                suspense.load_state,
                suspense.dump_state,
                SUSPENSE_APART,
            ),
            (
                "invoice-references",
                INVOICE_REFERENCE_INPUTS,
                "invoice_references",
                invoice_reference_core(settings),
                invoice_references.load_state,
                invoice_references.dump_state,
                None,
            ),
        )
    ]
    return [
        ProcessorSpec("bank-router", ROUTER_INPUTS, None, lambda: router, start_and_catch_up),
        ProcessorSpec("repartition", (INVOICES,), None, InvoiceRepartitioner),
        *stateful,
    ]
