"""The faust agents. Each one: turn a message into an event (or a dead letter), call the
pure core, send what it returns. No business rule lives here."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import faust

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import InvalidEvent
from schemas.topics import CLOCK, CLOCK_FANOUT, INVOICES, ORDERS, PAYMENTS, REFUNDS
from services import metrics
from services.domain.ledger import Ledger, apply, new_ledger
from services.domain.tolerance import Tolerances
from services.settings import Settings
from services.worker.edge import RawMessage, accept, rejection
from services.worker.sink import Sink, raw_topic

log = logging.getLogger(__name__)

LEDGER_INPUTS = (ORDERS, INVOICES, PAYMENTS, REFUNDS, CLOCK_FANOUT)


def raw_message(message: Any) -> RawMessage:
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp=datetime.fromtimestamp(message.timestamp, tz=UTC),
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


async def _accept_or_reject(sink: Sink, message: RawMessage, source: str) -> CloudEvent | None:
    try:
        return accept(message)
    except InvalidEvent as exc:
        await sink.dead_letter(rejection(message, exc, source), message.topic)
        return None


def register_processors(app: faust.App, settings: Settings) -> None:
    tolerances = Tolerances()
    ledger_sink = Sink(app, "ledger")
    clock_sink = Sink(app, "clock")
    ledgers = app.Table(
        "ledgers",
        partitions=settings.topic_partitions,
        key_type=bytes,
        value_type=bytes,
        help="one Ledger per order, as JSON",
    )

    async def handle_ledger(message: RawMessage) -> None:
        event = await _accept_or_reject(ledger_sink, message, settings.source)
        if event is None:
            return
        metrics.EVENTS_IN.labels("ledger", event.type).inc()
        key = event.partition_key()
        if key is None:  # day.closed: time-driven rules arrive with the full ledger
            return
        stored = ledgers.get(key.encode())
        ledger = Ledger.model_validate_json(stored) if stored else new_ledger(key)
        try:
            updated, outputs = apply(ledger, event, tolerances)
        except Exception as exc:  # a defect in a rule: keep the event, keep the worker going
            log.exception("ledger rules failed on event %s", event.id)
            problem = InvalidEvent.single(
                "", f"internal error applying the event: {exc!r}", event.id
            )
            await ledger_sink.dead_letter(
                rejection(message, problem, settings.source), message.topic
            )
            return
        if updated is not ledger:
            ledgers[key.encode()] = updated.model_dump_json().encode()
        if outputs:
            await ledger_sink.send(outputs)
            metrics.LATENCY.labels("ledger").observe(time.time() - event.time.timestamp())
            for output in outputs:
                if isinstance(output, ev.MismatchDetected):
                    metrics.MISMATCHES.labels(output.data.reason.value).inc()

    async def handle_clock(message: RawMessage) -> None:
        event = await _accept_or_reject(clock_sink, message, settings.source)
        if event is None:
            return
        metrics.EVENTS_IN.labels("clock", event.type).inc()
        # A redelivery repeats the fan-out; day.closed is idempotent by its event id.
        for partition in range(CLOCK_FANOUT.partitions):
            await clock_sink.send_to_partition(CLOCK_FANOUT, message.value or b"", partition)

    @app.agent(raw_topic(app, *LEDGER_INPUTS), name="ledger", concurrency=1)
    async def ledger_agent(stream: Any) -> None:
        await consume(app, stream, handle_ledger)

    @app.agent(raw_topic(app, CLOCK), name="clock-fanout", concurrency=1)
    async def clock_fanout(stream: Any) -> None:
        await consume(app, stream, handle_clock)
