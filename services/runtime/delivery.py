"""The worker process's one producer: outputs, copies, dead letters, re-routed records and
changelog records, with the acknowledgements the commit protocol waits for.

librdkafka produces on its own threads, a few microseconds a message from Python. Every
record is produced with acks=all and idempotence; `flush` returns only once the broker
has acknowledged everything produced, and raises if it refused anything. A broker that is
down is waited for (librdkafka keeps retrying; message.timeout.ms is unbounded), never a
reason to crash-loop.

With exactly-once processing the producer is transactional (KIP-447): one transaction per
batch holds its outputs, changelog records and input offsets.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from schemas.topics import OUTPUT_MAX_MESSAGE_BYTES
from services.connections import NOTICE_SECONDS, kafka_config

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]
# How often a flush that waits for a broker says so.
WAITING_NOTICE_SECONDS = NOTICE_SECONDS


class DeliveryRefused(RuntimeError):
    """The broker refused a record for good (too large, not authorised, topic missing)."""


class Delivery:
    def __init__(self, bootstrap: str, transactional_id: str | None = None, **extra: Any) -> None:
        config: dict[str, Any] = kafka_config(bootstrap) | {
            "enable.idempotence": True,
            "acks": "all",
            # A batch's outputs leave together, and a flush waits little for them.
            "linger.ms": 1,
            "compression.type": "lz4",
            "message.max.bytes": OUTPUT_MAX_MESSAGE_BYTES,
            # The contract's partitioner (the Java client's): outputs keyed by order id land
            # on the partition of the order's facts.
            "partitioner": "murmur2_random",
            # Wait for a broker that is down rather than drop what is queued.
            "message.timeout.ms": 0,
        }
        if transactional_id is not None:
            config["transactional.id"] = transactional_id
            # A crashed worker's open transaction holds back read_committed readers until
            # it times out or its successor (same id) aborts it: keep that short.
            config["transaction.timeout.ms"] = 10_000
            # CONCURRENT_TRANSACTIONS (the previous commit still settling on the
            # coordinator) is retried after retry.backoff.ms, 100 ms by default: at one
            # transaction a batch that was most of a batch's latency.
            config["retry.backoff.ms"] = 5
            config["retry.backoff.max.ms"] = 100
        config.update(extra)
        self.producer = Producer(config)
        self.transactional = transactional_id is not None
        self._in_transaction = False
        self._failures: list[str] = []
        self._lock = threading.Lock()
        # (topic, partition) -> the highest offset acknowledged since the last `take_offsets`
        self._acknowledged: dict[tuple[str, int], int] = {}
        if self.transactional:
            self.producer.init_transactions(60)

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        if self.transactional and not self._in_transaction:
            self.producer.begin_transaction()
            self._in_transaction = True
        while True:
            try:
                if partition is None:
                    self.producer.produce(
                        topic, value, key, headers=headers, on_delivery=self._delivered
                    )
                else:
                    self.producer.produce(
                        topic, value, key, partition, headers=headers, on_delivery=self._delivered
                    )
                return
            except BufferError:
                self.producer.poll(0.05)  # librdkafka's queue is full: let deliveries drain

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        with self._lock:
            if error is not None:
                self._failures.append(f"{message.topic()}: {error}")
                return
            place = (message.topic() or "", message.partition() or 0)
            offset = message.offset() or 0
            if offset > self._acknowledged.get(place, -1):
                self._acknowledged[place] = offset

    def flush(self) -> None:
        """Block until everything produced is acknowledged; raise if anything was refused."""
        started = time.monotonic()
        while self.producer.flush(WAITING_NOTICE_SECONDS):
            log.warning(
                "waiting %.0fs for the broker to acknowledge %d records; retrying",
                time.monotonic() - started,
                len(self.producer),
            )
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            raise DeliveryRefused(f"{len(failures)} records refused by the broker: {failures[0]}")

    def take_offsets(self) -> dict[tuple[str, int], int]:
        """The highest acknowledged offset per partition since the last call."""
        with self._lock:
            taken, self._acknowledged = self._acknowledged, {}
        return taken

    # --- transactions --------------------------------------------------------------------

    def commit_transaction(self, offsets: list[TopicPartition], group_metadata: Any) -> None:
        """Commit the batch's records and its input offsets as one transaction."""
        if not self._in_transaction:
            if not offsets:
                return
            self.producer.begin_transaction()
            self._in_transaction = True
        if offsets:
            self.producer.send_offsets_to_transaction(offsets, group_metadata, 60)
        self.producer.commit_transaction(60)
        self._in_transaction = False
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            raise DeliveryRefused(f"{len(failures)} records refused by the broker: {failures[0]}")

    def abort_transaction(self) -> None:
        if self._in_transaction:
            try:
                self.producer.abort_transaction(60)
            except KafkaException:
                log.exception("aborting the transaction failed")
            self._in_transaction = False
        with self._lock:
            self._failures = []
            self._acknowledged = {}
