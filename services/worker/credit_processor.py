"""The credit processor: the faust shell around `services.domain.credit.apply`.

balance.changed is keyed by order id, so every writer of one also puts a copy keyed by
customer id on o2c.internal.balances-by-customer (schemas/topics.py, COPIES); the credit
agent reads that topic with o2c.customers
(both keyed by customer id, co-partitioned) and keeps one `CreditState` per customer.
Messages are handled in batches, as the ledger's are: within a batch a customer's state
stays an object, and states are recorded once, after the broker has acknowledged every
output of the batch, so a redelivered event finds either the state before it (and is
processed again, with the same output ids) or a state that already has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faust

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import InvalidEvent, decode
from schemas.topics import BALANCES_BY_CUSTOMER, CUSTOMERS
from services import metrics
from services.domain.credit import CreditState, apply, dump_state, load_state, new_state
from services.settings import Settings
from services.worker.app import ensure_changelogs, table_options
from services.worker.batches import in_batches
from services.worker.edge import RawMessage, raw_message
from services.worker.ledger_processor import Batch
from services.worker.sink import Sink, raw_topic

CREDIT_INPUTS = (CUSTOMERS, BALANCES_BY_CUSTOMER)


class CreditProcessor:
    def __init__(self, table: Any, sink: Sink) -> None:
        self.table = table  # a faust Table of bytes -> bytes, keyed by customer id
        self.sink = sink

    async def handle_batch(self, records: Sequence[Any]) -> None:
        batch = Batch(self.table)
        states: dict[bytes, tuple[CreditState, Any]] = {}  # key -> (state, record writing it)
        for record in records:
            batch.record = record
            await self.handle(raw_message(record.message), batch, states)
        for key, (state, record) in states.items():
            batch.values[key] = (dump_state(state), record)
        await self.sink.drained()
        batch.commit_to_table()

    async def handle(
        self, message: RawMessage, batch: Batch, states: dict[bytes, tuple[CreditState, Any]]
    ) -> None:
        event = await self._accept(message)
        if isinstance(event, ev.CustomerUpserted):
            customer_id: str | None = event.data.customer_id
        elif isinstance(event, ev.BalanceChanged):
            customer_id = event.data.customer_id
        else:
            return
        if not customer_id:
            return
        if isinstance(event, ev.CustomerUpserted):
            # Only the input counts: the balances here are o2c-matcher's own outputs, copied.
            metrics.EVENTS_IN.labels("credit", event.type).inc()
        key = customer_id.encode()
        if key in states:
            state = states[key][0]
        else:
            stored = batch.get(key)
            state = load_state(stored) if stored else new_state(customer_id)
        updated, outputs = apply(state, event)
        if outputs:
            await self.sink.send(outputs)
        if updated is not state:
            states[key] = (updated, batch.record)

    async def _accept(self, message: RawMessage) -> CloudEvent | None:
        if message.topic != BALANCES_BY_CUSTOMER.name:
            return await self.sink.accept(message)
        # A balance.changed keyed by customer id here, not by its contract key (order id).
        try:
            event = decode(message.value or b"")
            key = (message.key or b"").decode("utf-8", "replace")
            if not isinstance(event, ev.BalanceChanged) or event.data.customer_id != key:
                raise InvalidEvent.single(
                    "key", f"not a balance.changed of customer {key!r}", event.id
                )
        except InvalidEvent as exc:
            await self.sink.dead_letter(message, exc)
            return None
        return event


def register_credit_processor(app: faust.App, settings: Settings) -> None:
    ensure_changelogs(settings, ["credit"])
    table = app.Table(
        "credit",
        partitions=settings.topic_partitions,
        key_type=bytes,
        options=table_options(settings),
        value_type=bytes,
        help="one CreditState per customer: limit, exposure per order, breached or not",
        # The changelog partition from the key's hash, which is the input's partition (every
        # input is keyed by customer id with the same murmur2 partitioner). Faust's default,
        # the current message's partition, checks the changelog's partition count against a
        # metadata snapshot taken before a fresh deployment created the topic, and fails.
        use_partitioner=True,
    )
    credit = CreditProcessor(table, Sink(app, "credit", settings.source))

    @app.agent(raw_topic(app, *CREDIT_INPUTS), name="credit", concurrency=1)
    async def credit_agent(stream: Any) -> None:
        await in_batches(app, settings, stream, credit.handle_batch)
