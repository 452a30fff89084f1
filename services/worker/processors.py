"""The faust agents. Each one: turn a message into an event (or a dead letter), call the
pure core, send what it returns. No business rule lives here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from schemas.topics import (
    CLOCK,
    CLOCK_FANOUT,
    INVOICES,
    LEDGER_FACTS,
    ORDERS,
    PAYMENTS,
    PAYMENTS_BY_ORDER,
    REFUNDS,
)
from services import metrics
from services.domain.references import ReferencePatterns
from services.settings import Settings
from services.worker.app import ensure_changelogs, table_options
from services.worker.batches import in_batches, or_stop
from services.worker.credit_processor import CREDIT_INPUTS, register_credit_processor
from services.worker.edge import RawMessage, raw_message
from services.worker.ledger_processor import LedgerProcessor
from services.worker.settlement_processors import (
    SETTLEMENT_INPUTS,
    register_settlement_processors,
)
from services.worker.sink import Sink, raw_topic

log = logging.getLogger(__name__)

LEDGER_INPUTS = (ORDERS, INVOICES, PAYMENTS, REFUNDS, LEDGER_FACTS, PAYMENTS_BY_ORDER, CLOCK_FANOUT)
# Every topic the worker's consumer group reads: a new group must start at the end of all
# of them to see only new events (tests, benchmarks), and its lag is measured over them.
WORKER_INPUTS = tuple(dict.fromkeys((*LEDGER_INPUTS, CLOCK, *CREDIT_INPUTS, *SETTLEMENT_INPUTS)))


Handler = Callable[[RawMessage], Awaitable[None]]


async def consume(stream: Any, handle: Handler) -> None:
    """Run `handle` on each message, acknowledging it only after `handle` returned.

    faust acknowledges an event when the loop leaves it, even by an exception, and would then
    commit past a message that was never handled. So acknowledgement is manual, and a failure
    that is not the message's fault (broker, disk) stops the worker with the offset unmoved:
    the message is handled again after the restart.
    """
    manual = stream.noack()
    async for record in manual.events():
        await or_stop(handle(raw_message(record.message)), record.message.tp)
        await manual.ack(record)


def register_processors(app: faust.App, settings: Settings) -> None:
    ensure_changelogs(settings, ["ledgers"])
    ledgers = app.Table(
        "ledgers",
        partitions=settings.topic_partitions,
        key_type=bytes,
        options=table_options(settings),
        value_type=bytes,
        help="one Ledger per order, and the business day per partition",
    )
    ledger = LedgerProcessor(
        ledgers,
        Sink(app, "ledger", settings.source),
        settings.policy(),
        ReferencePatterns(settings.reference_patterns),
        settings.topic_partitions,
    )
    clock_sink = Sink(app, "clock", settings.source)

    async def handle_clock(message: RawMessage) -> None:
        event = await clock_sink.accept(message)
        if event is None:
            return
        metrics.EVENTS_IN.labels("clock", event.type).inc()
        # A redelivery repeats the fan-out; closing a day twice changes nothing.
        for partition in range(CLOCK_FANOUT.partitions):
            await clock_sink.send_to_partition(CLOCK_FANOUT, message.value or b"", partition)
        await clock_sink.drained()

    @app.agent(raw_topic(app, *LEDGER_INPUTS), name="ledger", concurrency=1)
    async def ledger_agent(stream: Any) -> None:
        await in_batches(app, settings, stream, ledger.handle_batch)

    @app.agent(raw_topic(app, CLOCK), name="clock-fanout", concurrency=1)
    async def clock_fanout(stream: Any) -> None:
        await consume(stream, handle_clock)

    register_credit_processor(app, settings)
    register_settlement_processors(app, settings)
