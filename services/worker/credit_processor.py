"""The credit processor: the faust shell around `services.domain.credit.apply`.

balance.changed is keyed by order id, so a first agent re-keys it by customer id onto
o2c.internal.balances-by-customer; the credit agent reads that topic with o2c.customers
(both keyed by customer id, co-partitioned) and keeps one `CreditState` per customer.
A state is recorded only after the broker has acknowledged its outputs, so a redelivered
event finds either the state before it (and is processed again, with the same output ids)
or a state that already has it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.exceptions import PartitionsMismatch

from schemas import events as ev
from schemas.events import type_name
from schemas.topics import BALANCES_BY_CUSTOMER, CUSTOMERS, MATCHES
from services import metrics
from services.domain.credit import apply, dump_state, load_state, new_state
from services.settings import Settings
from services.worker.edge import RawMessage
from services.worker.sink import Sink, raw_topic

CREDIT_INPUTS = (CUSTOMERS, BALANCES_BY_CUSTOMER)
_BALANCE_CHANGED = type_name(ev.BalanceChanged)


class CreditProcessor:
    def __init__(self, table: Any, sink: Sink) -> None:
        self.table = table  # a faust Table of bytes -> bytes, keyed by customer id
        self.sink = sink

    async def handle(self, message: RawMessage) -> None:
        event = await self.sink.accept(message)
        if event is None:
            return
        customer_id = event.partition_key()
        if not isinstance(event, ev.CustomerUpserted | ev.BalanceChanged) or not customer_id:
            return
        metrics.EVENTS_IN.labels("credit", event.type).inc()
        key = customer_id.encode()
        stored = self.table.get(key)
        state = load_state(stored) if stored else new_state(customer_id)
        updated, outputs = apply(state, event)
        if outputs:
            await self.sink.send(outputs)
            await self.sink.drained()
        if updated is not state:
            await self._store(key, dump_state(updated))

    async def _store(self, key: bytes, value: bytes) -> None:
        # On a fresh deployment the changelog topic is created at start-up, and the first
        # write can come before the consumer's metadata knows its partitions.
        for _attempt in range(120):
            try:
                self.table[key] = value
                return
            except PartitionsMismatch:
                await asyncio.sleep(0.5)
        self.table[key] = value


class BalanceRekey:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle(self, message: RawMessage) -> None:
        if not _is_balance_changed(message):
            return
        event = await self.sink.accept(message)
        if not isinstance(event, ev.BalanceChanged) or event.data.customer_id is None:
            return
        await self.sink.send_raw(BALANCES_BY_CUSTOMER, event.data.customer_id, message.value or b"")
        await self.sink.drained()


def _is_balance_changed(message: RawMessage) -> bool:
    for name, value in message.headers:
        if name == "ce_type":
            return value.decode("utf-8", "replace") == _BALANCE_CHANGED
    return f'"type":"{_BALANCE_CHANGED}"'.encode() in (message.value or b"")


def register_credit_processor(app: faust.App, settings: Settings) -> None:
    from services.worker.processors import consume  # the shared acknowledge-after-handle loop

    table = app.Table(
        "credit",
        partitions=settings.topic_partitions,
        key_type=bytes,
        value_type=bytes,
        help="one CreditState per customer: limit, exposure per order, breached or not",
    )
    credit = CreditProcessor(table, Sink(app, "credit", settings.source))
    rekey = BalanceRekey(Sink(app, "credit-rekey", settings.source))

    @app.agent(raw_topic(app, MATCHES), name="credit-rekey", concurrency=1)
    async def credit_rekey(stream: Any) -> None:
        await consume(stream, rekey.handle)

    @app.agent(raw_topic(app, *CREDIT_INPUTS), name="credit", concurrency=1)
    async def credit_agent(stream: Any) -> None:
        await consume(stream, credit.handle)
