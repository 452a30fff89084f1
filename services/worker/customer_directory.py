"""The whole `o2c.customers` topic in every worker: the payer directory of the bank-line router.

Customers are few and change rarely, so each worker reads every partition of the compacted
topic itself, from the beginning, without a consumer group: the bank-line router that
asks it is keyed by account, not by customer, so a per-task store would not do. Before the
router decides
a batch of lines it calls `catch_up`, which waits until the directory has read everything
the topic held at that moment: a customer published before a bank line is known when the
line is routed.

The reading thread only queues what it read; the directory itself changes on the worker's
thread, one customer at a time, when the router asks for it, so routing never sees it
half-updated and never waits for a rebuild from every customer.

Invalid customer events are skipped here; the runtime dead-letters them once.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas import events as ev
from schemas.codec import InvalidEvent, decode
from schemas.topics import CUSTOMERS
from services import kafka_io
from services.domain.payers import PayerDirectory
from services.runtime.edge import card_masking

log = logging.getLogger(__name__)


class CustomerDirectory:
    def __init__(self, bootstrap: str, topic: str = CUSTOMERS.name) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        # Read but not yet applied: (customer id, the customer, or None once removed).
        self._pending: list[tuple[str, ev.CustomerUpsertedData | None]] = []
        self._positions: dict[int, int] = {}  # partition -> next offset to read
        self._lock = threading.Lock()
        self._directory = PayerDirectory()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watermarks: Consumer | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="customer-directory", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def directory(self) -> PayerDirectory:
        with self._lock:
            pending, self._pending = self._pending, []
        for customer_id, customer in pending:
            if customer is None:
                self._directory.remove(customer_id)
            else:
                self._directory.upsert(customer)
        return self._directory

    def catch_up(self, patience: float = 30.0) -> None:
        """Return once everything `o2c.customers` holds now has been read (or, should the
        directory be stuck, after `patience` seconds, with a warning)."""
        ends = self._ends()
        deadline = time.monotonic() + patience
        while not self._reached(ends):
            if time.monotonic() > deadline:
                log.warning("customer directory is behind %s; routing with what it has", ends)
                return
            time.sleep(0.005)

    def _reached(self, ends: dict[int, int]) -> bool:
        with self._lock:
            return all(self._positions.get(p, 0) >= end for p, end in ends.items() if end > 0)

    def _ends(self) -> dict[int, int]:
        if self._watermarks is None:
            self._watermarks = kafka_io.consumer(self._bootstrap, "o2c-customer-directory")
        metadata = self._watermarks.list_topics(self._topic, timeout=30)
        partitions = metadata.topics[self._topic].partitions
        return {
            p: kafka_io.watermarks(self._watermarks, TopicPartition(self._topic, p))[1]
            for p in partitions
        }

    def _run(self) -> None:
        consumer = kafka_io.consumer(self._bootstrap, "o2c-customer-directory")
        try:
            metadata = consumer.list_topics(self._topic, timeout=30)
            partitions = metadata.topics[self._topic].partitions
            consumer.assign([TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in partitions])
            while not self._stop.is_set():
                msg = consumer.poll(0.1)
                if msg is None or msg.error():
                    continue
                self._take(msg.partition() or 0, msg.offset() or 0, msg.key(), msg.value())
        except Exception:
            log.exception("the customer directory stopped reading o2c.customers")
        finally:
            consumer.close()

    def _take(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        customer = None if value is None else _customer(value)
        with self._lock:
            if value is None:  # a tombstone: the customer is gone
                self._pending.append(((key or b"").decode("utf-8", "replace"), None))
            elif customer is not None:
                self._pending.append((customer.customer_id, customer))
            self._positions[partition] = offset + 1


def _customer(value: bytes) -> ev.CustomerUpsertedData | None:
    try:
        event = decode(value)
    except InvalidEvent:
        return None
    if not isinstance(event, ev.CustomerUpserted):
        return None
    # Names masked as the edge masks a bank line's counterparty name, so they still compare
    # (the credit processor's edge counts and reports them).
    masked, _found = card_masking().event(event)
    return masked.data if isinstance(masked, ev.CustomerUpserted) else None
