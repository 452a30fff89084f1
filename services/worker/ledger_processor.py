"""The ledger processor: the faust shell around `services.domain.matching.apply`.

One table of ledgers keyed by order id (or by payment id for a payment that names no order
we can find), co-partitioned with every order-keyed input. Per partition the table also
holds the last business day closed, under a key no order id can take.

Messages are handled in batches. Within a batch, new ledger states stay in an overlay; the
table (and so its changelog) receives them only after the broker has acknowledged every
output of the batch. Recorded state therefore never runs ahead of the outputs it caused: a
redelivered event finds either the state before it, and is processed again, or a state
whose outputs are already on the broker.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any, cast

from aiokafka.partitioner import murmur2
from faust.streams import _current_event

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import InvalidEvent, encode
from schemas.topics import PAYMENTS, PAYMENTS_BY_ORDER
from services import metrics
from services.domain.ledger import (
    Ledger,
    dump_state,
    load_state,
    new_ledger,
    stored_time_driven,
)
from services.domain.matching import apply, may_change_with_time
from services.domain.policy import Policy
from services.domain.references import ReferencePatterns
from services.worker.edge import RawMessage, raw_message
from services.worker.sink import Sink

log = logging.getLogger(__name__)

# Keys no order id can take (they start with NUL): per-partition bookkeeping in the table.
BOOKKEEPING = b"\x00"
CLOCK_KEY_PREFIX = BOOKKEEPING + b"clock/"
# payment id -> the order its capture's reference named, so that a reversal naming only
# the payment follows the capture. Kept on the payment's own partition, where both arrive.
FORWARDED_PREFIX = BOOKKEEPING + b"forwarded/"
# Parsed ledgers kept beside their stored bytes (about 4 KB each with the objects).
RECENT_LEDGERS = 20_000


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the Java client, aiokafka and our producers put `key` on."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


@contextmanager
def _as_current(record: Any) -> Iterator[None]:
    """Make `record` faust's current event: a table read or write goes to the store and
    changelog partition of the current event, which must be the partition of the key.
    Within a batch faust's own current event is whichever message it buffered last."""
    token = _current_event.set(weakref.ref(record))
    try:
        yield
    finally:
        _current_event.reset(token)


class Batch:
    """New table values of one batch, kept until its outputs are acknowledged."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.values: dict[bytes, tuple[bytes, Any]] = {}  # key -> (value, record writing it)
        self.record: Any = None  # the faust event being handled
        self.days: dict[int, date | None] = {}  # business day per partition, once read
        # faust's RocksDB store keeps a database per partition; another store (the tests'
        # memory store) is read through faust.
        data = table.data
        self.rocksdb: Any = data if hasattr(data, "_db_for_partition") else None

    def get(self, key: bytes) -> bytes | None:
        if key in self.values:
            return self.values[key][0]
        if self.rocksdb is not None:
            # One lookup in the database of the message's partition, which holds the
            # key (every input is keyed, and co-partitioned, by what its processor's table is
            # keyed by). faust's own read makes two (__contains__, then __getitem__); for a
            # table that uses the partitioner (credit) it probes every partition's database
            # for a key outside its 1,000-key index, which grew slower as state grew.
            db = self.rocksdb._db_for_partition(self.record.message.partition)
            return cast(bytes | None, db.get(key))
        # A read, like a write, looks only in the store of the current event's partition.
        with _as_current(self.record):
            return cast(bytes | None, self.table.get(key))

    def put(self, key: bytes, value: bytes) -> None:
        self.values[key] = (value, self.record)

    def day(self, partition: int) -> date | None:
        """The last business day closed on `partition`, read from the table once a batch."""
        if partition not in self.days:
            stored = self.get(CLOCK_KEY_PREFIX + str(partition).encode())
            self.days[partition] = date.fromisoformat(stored.decode()) if stored else None
        return self.days[partition]

    def set_day(self, partition: int, day: date) -> None:
        self.put(CLOCK_KEY_PREFIX + str(partition).encode(), day.isoformat().encode())
        self.days[partition] = day

    def items_of(self, partition: int, partitions: int) -> Iterator[tuple[bytes, bytes]]:
        """Every key of one partition with its value; a pending value hides a stored one."""
        pending = {
            key: value
            for key, (value, _record) in self.values.items()
            if partition_of(key, partitions) == partition
        }
        yield from pending.items()
        if self.rocksdb is not None:
            # Read just the partition's database, not the table.
            stored = self.rocksdb._visible_items(self.rocksdb._db_for_partition(partition))
        else:
            stored = (
                (k, v) for k, v in self.table.items() if partition_of(k, partitions) == partition
            )
        yield from ((k, v) for k, v in stored if k not in pending)

    def commit_to_table(self) -> None:
        for key, (value, record) in self.values.items():
            with _as_current(record):
                self.table[key] = value
        self.values.clear()


class LedgerProcessor:
    def __init__(
        self,
        table: Any,  # a faust Table of bytes -> bytes; dict-like
        sink: Sink,
        policy: Policy,
        references: ReferencePatterns,
        partitions: int,
    ) -> None:
        self.table = table
        self.sink = sink
        self.policy = policy
        self.references = references
        self.partitions = partitions
        self._recent: dict[bytes, tuple[bytes, Ledger]] = {}

    async def handle_batch(self, records: Sequence[Any]) -> None:
        batch = Batch(self.table)
        for record in records:
            batch.record = record
            await self.handle(raw_message(record.message), batch)
        await self.sink.drained()
        batch.commit_to_table()

    async def handle(self, message: RawMessage, batch: Batch) -> None:
        event = await self.sink.accept(message)
        if event is None:
            return
        metrics.EVENTS_IN.labels("ledger", event.type).inc()
        if isinstance(event, ev.DayClosed):
            await self.close_day(message.partition, event, batch)
            return
        if message.topic == PAYMENTS.name and await self._forward_by_reference(event, batch):
            return
        key = event.partition_key()
        assert key is not None  # every ledger fact has a key field
        await self._apply(message, key.encode(), event, batch.day(message.partition), batch)

    async def _forward_by_reference(self, event: CloudEvent, batch: Batch) -> bool:
        """A payment that names no order, but whose reference does, goes to that order's
        partition through the repartition topic, and so does a later reversal of it; True
        when it was forwarded."""
        if not isinstance(event, ev.PaymentCaptured | ev.PaymentReversed):
            return False
        if event.data.order_id is not None:
            return False
        forwarded = FORWARDED_PREFIX + event.data.payment_id.encode()
        if isinstance(event, ev.PaymentCaptured):
            order_id = self.references.order_id(event.data.reference)
            if order_id is not None:
                batch.put(forwarded, order_id.encode())
        else:
            # A reversal arriving before its capture stays keyed by the payment id.
            named = batch.get(forwarded)
            order_id = named.decode() if named else None
        if order_id is None:
            return False  # stays keyed by payment id; PAYMENT_WITHOUT_ORDER if it stays so
        data = event.data.model_copy(update={"order_id": order_id})
        resolved = event.model_copy(update={"data": data, "subject": order_id})
        await self.sink.send_raw(PAYMENTS_BY_ORDER, order_id, encode(resolved))
        return True

    async def _apply(
        self, message: RawMessage, key: bytes, event: CloudEvent, today: date | None, batch: Batch
    ) -> None:
        stored = batch.get(key)
        ledger = self._load(key, stored) if stored else new_ledger(key.decode())
        try:
            updated, outputs = apply(ledger, event, self.policy, today)
        except Exception as exc:  # a defect in a rule: keep the event, keep the worker going
            log.exception("ledger rules failed on event %s", event.id)
            problem = InvalidEvent.single(
                "", f"internal error applying the event: {exc!r}", event.id
            )
            await self.sink.dead_letter(message, problem)
            return
        if updated is not ledger:
            batch.put(key, self._dump(key, updated))
            _track_open_balance(ledger, updated)
        await self._send(event, outputs)

    def _load(self, key: bytes, stored: bytes) -> Ledger:
        """The ledger stored as `stored`, parsed once: the last ledger written under a key is
        remembered with its bytes and reused while the store still holds those bytes."""
        known = self._recent.get(key)
        if known is not None and known[0] == stored:
            return known[1]
        return load_state(stored)

    def _dump(self, key: bytes, ledger: Ledger) -> bytes:
        stored = dump_state(ledger, time_driven=may_change_with_time(ledger, self.policy))
        if len(self._recent) >= RECENT_LEDGERS:
            self._recent.clear()  # crude but bounded; the next batches refill it
        self._recent[key] = (stored, ledger)
        return stored

    async def _send(self, cause: CloudEvent, outputs: Sequence[CloudEvent]) -> None:
        if not outputs:
            return
        await self.sink.send(outputs)
        metrics.LATENCY.labels("ledger").observe(time.time() - cause.time.timestamp())
        for output in outputs:
            if isinstance(output, ev.MismatchDetected):
                metrics.MISMATCHES.labels(output.data.reason.value).inc()

    # --- time -----------------------------------------------------------------------------

    async def close_day(self, partition: int, event: ev.DayClosed, batch: Batch) -> None:
        """Re-assess the ledgers of this partition that the new business day may change."""
        before = batch.day(partition)
        day = event.data.date if before is None else max(before, event.data.date)
        seen = 0
        waiting: dict[bytes, bytes] = {}  # the ledgers a later day may change
        for key, stored in batch.items_of(partition, self.partitions):
            if not stored or key.startswith(BOOKKEEPING):
                continue
            seen += 1
            if stored_time_driven(stored):
                waiting[key] = stored
        keys = sorted(waiting)
        for key in keys:
            ledger = self._load(key, waiting[key])
            updated, outputs = apply(ledger, event, self.policy, before)
            if updated is not ledger:
                batch.put(key, self._dump(key, updated))
            await self._send(event, outputs)
        if day != before:
            batch.set_day(partition, day)
        log.info(
            "closed %s on partition %d: %d of %d ledgers re-assessed",
            day,
            partition,
            len(keys),
            seen,
        )


def _track_open_balance(before: Ledger, after: Ledger) -> None:
    old, new = before.reported, after.reported
    if new is None or after.order is None:
        return
    delta = new.open_balance - (old.open_balance if old else 0)
    if delta:
        metrics.OPEN_BALANCE.labels(new.currency).inc(float(delta))  # a gauge, not money
