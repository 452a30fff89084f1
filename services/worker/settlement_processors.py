"""The settlement processors: faust shells around the pure cores of bank-line routing
(services.domain.bank_routing), payouts (services.domain.payouts) and the suspense account
(services.domain.suspense).

    o2c.bank-lines ──router──► payment.applied (reference) / UNMATCHED_BANK_LINE
                       ├──► o2c.internal.bank-lines-by-payout ──► payout processor
                       └──► o2c.internal.bank-lines-by-customer ─► suspense processor
    o2c.settlements ─────────────────────────────────────────────► payout processor
                       └──► o2c.internal.bank-lines-by-invoice ─► invoice-reference processor
    o2c.invoices (invoice.issued) ──► o2c.internal.invoices-by-number ─► invoice-reference
    o2c.matches (balance.changed) ──► o2c.internal.balances-by-customer ► suspense processor

Like the ledger, the stateful processors handle messages in batches and record new state
only after the broker acknowledged the batch's outputs (ledger_processor.Batch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

import faust

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import InvalidEvent, decode
from schemas.events import type_name
from schemas.topics import (
    BALANCES_BY_CUSTOMER,
    BANK_LINES,
    BANK_LINES_BY_CUSTOMER,
    BANK_LINES_BY_INVOICE,
    BANK_LINES_BY_PAYOUT,
    CLOCK_FANOUT,
    CUSTOMERS,
    INVOICES,
    INVOICES_BY_NUMBER,
    SETTLEMENTS,
    TOPICS_BY_NAME,
    Role,
    Topic,
)
from services import metrics
from services.domain import bank_routing, invoice_references, payouts, suspense
from services.domain.bank_routing import IdPatterns, RoutingRules
from services.domain.candidates import SearchBounds
from services.settings import Settings
from services.worker.app import ensure_changelogs, table_options
from services.worker.batches import in_batches
from services.worker.customer_directory import CustomerDirectory
from services.worker.edge import RawMessage, header, raw_message
from services.worker.ledger_processor import CLOCK_KEY_PREFIX, Batch, partition_of
from services.worker.sink import Sink, raw_topic

log = logging.getLogger(__name__)

PAYER_CONFIDENCE_HEADER = "o2c-payer-confidence"
BALANCE_CHANGED = type_name(ev.BalanceChanged)
INVOICE_ISSUED = type_name(ev.InvoiceIssued)

ROUTER_INPUTS = (BANK_LINES,)
PAYOUT_INPUTS = (SETTLEMENTS, BANK_LINES_BY_PAYOUT, CLOCK_FANOUT)
SUSPENSE_INPUTS = (BANK_LINES_BY_CUSTOMER, BALANCES_BY_CUSTOMER)
INVOICE_REFERENCE_INPUTS = (INVOICES_BY_NUMBER, BANK_LINES_BY_INVOICE, CLOCK_FANOUT)
# Every topic the settlement agents read (the customers topic is also read by the directory).
SETTLEMENT_INPUTS: tuple[Topic, ...] = (
    BANK_LINES,
    SETTLEMENTS,
    CUSTOMERS,
    BANK_LINES_BY_PAYOUT,
    BANK_LINES_BY_CUSTOMER,
    BALANCES_BY_CUSTOMER,
    BANK_LINES_BY_INVOICE,
    INVOICES_BY_NUMBER,
)

# --- stateless: routing ------------------------------------------------------------------


class BankLineRouter:
    def __init__(self, sink: Sink, directory: CustomerDirectory, settings: Settings) -> None:
        self.sink = sink
        self.customers = directory
        self.payouts = IdPatterns(settings.payout_patterns)
        self.orders = IdPatterns(settings.reference_patterns)
        self.invoices = IdPatterns(settings.invoice_patterns)
        self.invoice_numbers = IdPatterns(settings.invoice_number_patterns)
        self.threshold = settings.payer_similarity

    def rules(self) -> RoutingRules:
        return RoutingRules(
            self.payouts,
            self.orders,
            self.invoices,
            self.invoice_numbers,
            self.customers.directory,
            self.threshold,
        )

    async def handle_batch(self, records: Sequence[Any]) -> None:
        await self.customers.catch_up()
        rules = self.rules()
        for record in records:
            await self.handle(raw_message(record.message), rules)
        await self.sink.drained()

    async def handle(self, message: RawMessage, rules: RoutingRules) -> None:
        event = await self.sink.accept(message)
        if not isinstance(event, ev.BankLineBooked):
            return
        metrics.EVENTS_IN.labels("bank-router", event.type).inc()
        value = message.value or b""
        match bank_routing.route(event.data, rules):
            case bank_routing.ToPayout(payout_id):
                await self.sink.send_raw(BANK_LINES_BY_PAYOUT, payout_id, value)
            case bank_routing.ToOrder(order_id):
                await self.sink.send([bank_routing.applied_by_reference(event, order_id)])
            case bank_routing.ToInvoice(invoice_id):
                await self.sink.send_raw(BANK_LINES_BY_INVOICE, invoice_id, value)
            case bank_routing.ToCustomer(payer):
                confidence = {PAYER_CONFIDENCE_HEADER: str(payer.confidence).encode()}
                await self.sink.send_raw(
                    BANK_LINES_BY_CUSTOMER, payer.customer_id, value, confidence
                )
            case bank_routing.UnknownPayer():
                await self.sink.send([bank_routing.unmatched_line(event)])
            case bank_routing.Ignored(why):
                log.debug("bank line %s not matched: %s", event.data.line_id, why)


class Repartitioner:
    """invoice.issued re-keyed by invoice id for the invoice-reference processor. (The
    ledger's balance.changed reaches the suspense processor as a copy its writers make.)"""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_batch(self, records: Sequence[Any]) -> None:
        for record in records:
            await self.handle(raw_message(record.message))
        await self.sink.drained()

    async def handle(self, message: RawMessage) -> None:
        wanted = INVOICE_ISSUED
        kind = header(message, "ce_type")
        value = message.value or b""
        if kind is not None and kind != wanted:
            return
        if kind is None and f'"type":"{wanted}"'.encode() not in value:
            return
        try:
            event = decode(value)
        except InvalidEvent:
            return  # the ledger dead-letters invalid invoices
        if isinstance(event, ev.InvoiceIssued):
            await self.sink.send_raw(INVOICES_BY_NUMBER, event.data.invoice_id, value)


# --- stateful: payouts and suspense --------------------------------------------------------

S = TypeVar("S")


@dataclass(frozen=True)
class Core(Generic[S]):
    name: str
    new: Callable[[str], S]
    load: Callable[[bytes], S]
    dump: Callable[[S], bytes]
    # (state, event, message, today) -> (state, outputs)
    apply: Callable[[S, CloudEvent, RawMessage, date | None], tuple[S, list[CloudEvent]]]


class KeyedProcessor(Generic[S]):
    """One state per message key in a faust table; the business day per partition."""

    def __init__(self, core: Core[S], table: Any, sink: Sink, partitions: int) -> None:
        self.core = core
        self.table = table
        self.sink = sink
        self.partitions = partitions
        # Within a batch, states stay objects: a busy key (a customer with many open items)
        # is then parsed and serialised once per batch, not once per event.
        self._states: dict[bytes, tuple[S, Any]] = {}  # key -> (state, record writing it)

    async def handle_batch(self, records: Sequence[Any]) -> None:
        batch = Batch(self.table)
        self._states.clear()
        for record in records:
            batch.record = record
            await self.handle(raw_message(record.message), batch)
        for key, (state, record) in self._states.items():
            batch.values[key] = (self.core.dump(state), record)
        self._states.clear()
        await self.sink.drained()
        batch.commit_to_table()

    async def handle(self, message: RawMessage, batch: Batch) -> None:
        event = await self.sink.accept(message)
        if event is None:
            return
        if TOPICS_BY_NAME[message.topic].role is not Role.INTERNAL:
            # Copies on internal topics were counted where they entered.
            metrics.EVENTS_IN.labels(self.core.name, event.type).inc()
        if isinstance(event, ev.DayClosed):
            await self.close_day(message, event, batch)
            return
        key = message.key or b""
        if not key or key.startswith(CLOCK_KEY_PREFIX):
            problem = InvalidEvent.single("key", "a message without a usable key", event.id)
            await self.sink.dead_letter(message, problem)
            return
        await self._apply(message, key, event, batch.day(message.partition), batch)

    async def _apply(
        self, message: RawMessage, key: bytes, event: CloudEvent, today: date | None, batch: Batch
    ) -> None:
        if key in self._states:
            state = self._states[key][0]
        else:
            stored = batch.get(key)
            state = self.core.load(stored) if stored else self.core.new(key.decode())
        try:
            updated, outputs = self.core.apply(state, event, message, today)
        except Exception as exc:  # a defect in a rule: keep the event, keep the worker going
            log.exception("%s rules failed on event %s", self.core.name, event.id)
            problem = InvalidEvent.single(
                "", f"internal error applying the event: {exc!r}", event.id
            )
            await self.sink.dead_letter(message, problem)
            return
        if updated is not state:
            self._states[key] = (updated, batch.record)
        if outputs:
            await self.sink.send(outputs)
            for output in outputs:
                if isinstance(output, ev.MismatchDetected):
                    metrics.MISMATCHES.labels(output.data.reason.value).inc()

    async def close_day(self, message: RawMessage, event: ev.DayClosed, batch: Batch) -> None:
        partition = message.partition
        before = batch.day(partition)
        day = event.data.date if before is None else max(before, event.data.date)
        # items_of gives pending values over stored ones, so each key's value is read once.
        stored = {key for key, value in batch.items_of(partition, self.partitions) if value}
        pending = {key for key in self._states if partition_of(key, self.partitions) == partition}
        for key in sorted(k for k in stored | pending if not k.startswith(CLOCK_KEY_PREFIX)):
            await self._apply(message, key, event, before, batch)
        if day != before:
            batch.set_day(partition, day)


def payout_core(settings: Settings) -> Core[payouts.PayoutState]:
    rules = payouts.PayoutRules(settings.policy(), settings.payout_bank_days)

    def apply(
        state: payouts.PayoutState, event: CloudEvent, _m: RawMessage, today: date | None
    ) -> tuple[payouts.PayoutState, list[CloudEvent]]:
        return payouts.apply(state, event, rules, today)

    return Core("payout", payouts.new_payout, payouts.load_state, payouts.dump_state, apply)


def suspense_core(settings: Settings) -> Core[suspense.Suspense]:
    bounds = SearchBounds(
        max_items=settings.combination_max_items,
        max_steps=settings.combination_max_steps,
        window_days=settings.suspense_window_days,
    )
    rules = suspense.SuspenseRules(settings.policy(), bounds)

    def apply(
        state: suspense.Suspense, event: CloudEvent, message: RawMessage, _today: date | None
    ) -> tuple[suspense.Suspense, list[CloudEvent]]:
        if isinstance(event, ev.DayClosed):
            return state, []  # matching a line does not depend on the business day
        return suspense.apply(state, event, rules, payer_confidence(message))

    return Core("suspense", suspense.new_suspense, suspense.load_state, suspense.dump_state, apply)


def invoice_reference_core(settings: Settings) -> Core[invoice_references.InvoiceReferences]:
    rules = invoice_references.InvoiceRules(settings.payout_bank_days)

    def apply(
        state: invoice_references.InvoiceReferences,
        event: CloudEvent,
        _m: RawMessage,
        today: date | None,
    ) -> tuple[invoice_references.InvoiceReferences, list[CloudEvent]]:
        return invoice_references.apply(state, event, rules, today)

    return Core(
        "invoice-references",
        invoice_references.new_references,
        invoice_references.load_state,
        invoice_references.dump_state,
        apply,
    )


def payer_confidence(message: RawMessage) -> Decimal:
    raw = header(message, PAYER_CONFIDENCE_HEADER)
    try:
        return Decimal(raw) if raw else Decimal(1)
    except InvalidOperation:
        return Decimal(1)


# --- wiring ------------------------------------------------------------------------------


def register_settlement_processors(app: faust.App, settings: Settings) -> None:
    """The router, the open-item forwarder, the payout and suspense processors, and the
    validation of o2c.customers."""
    ensure_changelogs(settings, ("payouts", "suspense", "invoice_references"))
    directory = CustomerDirectory(settings.kafka_bootstrap)
    router = BankLineRouter(Sink(app, "bank-router", settings.source), directory, settings)
    forwarder = Repartitioner(Sink(app, "repartition", settings.source))
    customers_sink = Sink(app, "customers", settings.source)
    processors = {
        name: KeyedProcessor(
            core,
            app.Table(
                name,
                partitions=settings.topic_partitions,
                key_type=bytes,
                options=table_options(settings),
                value_type=bytes,
                help=f"one {name} state per key, and the business day per partition",
            ),
            Sink(app, name, settings.source),
            settings.topic_partitions,
        )
        for name, core in (
            ("payouts", payout_core(settings)),
            ("suspense", suspense_core(settings)),
            ("invoice_references", invoice_reference_core(settings)),
        )
    }

    @app.task  # type: ignore[untyped-decorator]
    async def start_directory() -> None:
        directory.start()

    @app.agent(raw_topic(app, *ROUTER_INPUTS), name="bank-router", concurrency=1)
    async def bank_router(stream: Any) -> None:
        await in_batches(app, settings, stream, router.handle_batch)

    @app.agent(raw_topic(app, INVOICES), name="repartition", concurrency=1)
    async def repartition(stream: Any) -> None:
        await in_batches(app, settings, stream, forwarder.handle_batch)

    @app.agent(raw_topic(app, *PAYOUT_INPUTS), name="payouts", concurrency=1)
    async def payout_agent(stream: Any) -> None:
        await in_batches(app, settings, stream, processors["payouts"].handle_batch)

    @app.agent(raw_topic(app, *SUSPENSE_INPUTS), name="suspense", concurrency=1)
    async def suspense_agent(stream: Any) -> None:
        await in_batches(app, settings, stream, processors["suspense"].handle_batch)

    @app.agent(raw_topic(app, *INVOICE_REFERENCE_INPUTS), name="invoice-references", concurrency=1)
    async def invoice_reference_agent(stream: Any) -> None:
        await in_batches(app, settings, stream, processors["invoice_references"].handle_batch)

    async def validate_customer(records: Sequence[Any]) -> None:
        for record in records:
            event = await customers_sink.accept(raw_message(record.message))  # or dead letter
            if event is not None:  # the directory reads it; counted here, once per group
                metrics.EVENTS_IN.labels("customers", event.type).inc()

    @app.agent(raw_topic(app, CUSTOMERS), name="customers", concurrency=1)
    async def customers(stream: Any) -> None:
        await in_batches(app, settings, stream, validate_customer)
