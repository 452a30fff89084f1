"""The faust agents. Each one: turn a message into an event (or a dead letter), call the
pure core, send what it returns. No business rule lives here."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import faust

from schemas import events as ev
from schemas.codec import InvalidEvent
from schemas.topics import CLOCK, CLOCK_FANOUT, INVOICES, ORDERS, PAYMENTS, REFUNDS
from services import metrics
from services.domain.ledger import Ledger, apply, new_ledger
from services.domain.tolerance import Tolerances
from services.settings import Settings
from services.worker.edge import RawMessage, accept, rejection
from services.worker.sink import RAW, Sink, raw_topic

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


async def _accept_or_reject(sink: Sink, message: RawMessage, source: str) -> ev.CloudEvent | None:
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

    @app.agent(raw_topic(app, *LEDGER_INPUTS), name="ledger", concurrency=1)
    async def ledger_agent(stream: AsyncIterator[Any]) -> None:
        async for record in stream.events():  # type: ignore[attr-defined]
            message = raw_message(record.message)
            event = await _accept_or_reject(ledger_sink, message, settings.source)
            if event is None:
                continue
            metrics.EVENTS_IN.labels("ledger", event.type).inc()
            key = event.partition_key()
            if key is None:  # day.closed: time-driven rules arrive with the full ledger
                continue
            stored = ledgers.get(key.encode())
            ledger = Ledger.model_validate_json(stored) if stored else new_ledger(key)
            updated, outputs = apply(ledger, event, tolerances)
            if updated is not ledger:
                ledgers[key.encode()] = updated.model_dump_json().encode()
            if outputs:
                await ledger_sink.send(outputs)
                metrics.LATENCY.labels("ledger").observe(time.time() - event.time.timestamp())
                for output in outputs:
                    if isinstance(output, ev.MismatchDetected):
                        metrics.MISMATCHES.labels(output.data.reason.value).inc()

    @app.agent(raw_topic(app, CLOCK), name="clock-fanout", concurrency=1)
    async def clock_fanout(stream: AsyncIterator[Any]) -> None:
        async for record in stream.events():  # type: ignore[attr-defined]
            message = raw_message(record.message)
            event = await _accept_or_reject(clock_sink, message, settings.source)
            if event is None:
                continue
            metrics.EVENTS_IN.labels("clock", event.type).inc()
            for partition in range(CLOCK_FANOUT.partitions):
                await clock_sink.send_to_partition(CLOCK_FANOUT, message.value or b"", partition)

    _keep = (ledger_agent, clock_fanout)  # registered on the app by the decorator
    del _keep
