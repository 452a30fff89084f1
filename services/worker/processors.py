"""The faust agents. Each one: turn a message into an event (or a dead letter), call the
pure core, send what it returns. No business rule lives here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import faust

from schemas.topics import (
    CLOCK,
    CLOCK_FANOUT,
    INVOICES,
    MATCHES,
    ORDERS,
    PAYMENTS,
    PAYMENTS_BY_ORDER,
    REFUNDS,
)
from services import metrics
from services.domain.references import ReferencePatterns
from services.settings import Settings
from services.worker.edge import RawMessage
from services.worker.ledger_processor import LedgerProcessor
from services.worker.sink import Sink, raw_topic

log = logging.getLogger(__name__)

LEDGER_INPUTS = (ORDERS, INVOICES, PAYMENTS, REFUNDS, MATCHES, PAYMENTS_BY_ORDER, CLOCK_FANOUT)


def raw_message(message: Any) -> RawMessage:
    headers = message.headers or ()
    if isinstance(headers, dict):
        headers = headers.items()
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp=datetime.fromtimestamp(message.timestamp, tz=UTC),
        headers=tuple((str(k), bytes(v or b"")) for k, v in headers),
    )


Handler = Callable[[RawMessage], Awaitable[None]]


async def consume(app: faust.App, stream: Any, handle: Handler) -> None:
    """Run `handle` on each message, acknowledging it only after `handle` returned.

    faust acknowledges an event when the loop leaves it, even by an exception, and would then
    commit past a message that was never handled. So acknowledgement is manual, and a failure
    that is not the message's fault (broker, disk) stops the worker with the offset unmoved:
    the message is handled again after the restart.
    """
    manual = stream.noack()
    async for record in manual.events():
        try:
            await handle(raw_message(record.message))
        except Exception as exc:
            log.critical("stopping the worker: %r while handling %s", exc, record.message.tp)
            await app.crash(exc)
            return
        await manual.ack(record)


def register_processors(app: faust.App, settings: Settings) -> None:
    ledgers = app.Table(
        "ledgers",
        partitions=settings.topic_partitions,
        key_type=bytes,
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

    @app.agent(raw_topic(app, *LEDGER_INPUTS), name="ledger", concurrency=1)
    async def ledger_agent(stream: Any) -> None:
        await consume(app, stream, ledger.handle)

    @app.agent(raw_topic(app, CLOCK), name="clock-fanout", concurrency=1)
    async def clock_fanout(stream: Any) -> None:
        await consume(app, stream, handle_clock)
