"""Producing outputs from faust agents without losing any.

Outputs go through a confluent-kafka (librdkafka) producer rather than faust's aiokafka
one: producing in C on librdkafka's own threads costs a few microseconds a message where
the pure-Python path cost a fifth of the worker's time. faust's producer still writes the
tables' changelogs.

Every send is remembered until `drained`: the ledger waits for the broker to acknowledge
a batch's outputs before it records the batch's new state and before faust may commit
the batch's offsets, so a crash at any point leaves either the old state (the batch is
processed again and its outputs, with the same ids, sent again) or the new state with its
outputs already on the broker. Dead letters are drained one by one, before the offset of
the message they replace may move on.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any, ClassVar

import faust
from confluent_kafka import KafkaError, Message, Producer

from schemas.base import CloudEvent
from schemas.codec import InvalidEvent, encode
from schemas.topics import DEAD_LETTER, Topic, destinations
from services import kafka_io, metrics
from services.worker.edge import RawMessage, accept, rejection

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}
# The longest a drain waits for acknowledgements before it gives up (and the worker stops).
DRAIN_TIMEOUT_SECONDS = 60.0
Headers = list[tuple[str, str | bytes | None]]


def raw_topic(app: faust.App, *topics: Topic) -> Any:
    return app.topic(*(t.name for t in topics), **RAW)


class Delivery:
    """One producer per worker process, shared by its sinks, with its failed deliveries."""

    _by_bootstrap: ClassVar[dict[str, Delivery]] = {}

    def __init__(self, bootstrap: str) -> None:
        # linger 1 ms: a batch's outputs leave together, and a drain waits little for them.
        self.producer: Producer = kafka_io.producer(bootstrap, **{"linger.ms": 1})
        self._failures: list[str] = []
        self._lock = threading.Lock()

    @classmethod
    def of(cls, app: faust.App) -> Delivery:
        bootstrap = ",".join(str(url).removeprefix("kafka://") for url in app.conf.broker)
        if bootstrap not in cls._by_bootstrap:
            cls._by_bootstrap[bootstrap] = cls(bootstrap)
        return cls._by_bootstrap[bootstrap]

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        while True:
            try:
                self.producer.produce(
                    topic, value, key, headers=headers, on_delivery=self._delivered, **extra
                )
                return
            except BufferError:
                self.producer.poll(0.05)  # librdkafka's queue is full: let deliveries drain

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            with self._lock:
                self._failures.append(f"{message.topic()}: {error}")

    def flush(self) -> None:
        """Block until everything produced is acknowledged; raise if anything was refused."""
        remaining = self.producer.flush(DRAIN_TIMEOUT_SECONDS)
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            raise RuntimeError(f"{len(failures)} outputs refused by the broker: {failures[0]}")
        if remaining:
            raise RuntimeError(f"{remaining} outputs unacknowledged after {DRAIN_TIMEOUT_SECONDS}s")


class Sink:
    def __init__(self, app: faust.App, processor: str, source: str) -> None:
        self._delivery = Delivery.of(app)
        self._processor = processor
        self._source = source
        self._unflushed = False
        self._output_counters: dict[str, Any] = {}

    async def send(self, events: Iterable[CloudEvent]) -> None:
        for event in events:
            if event.source != self._source:  # the deployment's name for itself
                event = event.model_copy(update={"source": self._source})
            value = encode(event)
            for topic, key in destinations(event):
                self._produce(
                    topic.name,
                    None if key is None else key.encode(),
                    value,
                    # Lets a consumer skip types it does not handle without parsing the
                    # value (the CloudEvents Kafka binding's name for the attribute).
                    headers=[("ce_type", event.type.encode())],
                )
            self._counted(event.type).inc()

    async def send_raw(
        self, topic: Topic, key: str, value: bytes, headers: dict[str, bytes] | None = None
    ) -> None:
        listed: Headers | None = None if headers is None else list(headers.items())
        self._produce(topic.name, key.encode(), value, headers=listed)

    async def send_to_partition(self, topic: Topic, value: bytes, partition: int) -> None:
        self._produce(topic.name, None, value, partition=partition)

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        # Partitioned with murmur2 like the Java client and faust: see kafka_io.producer.
        self._delivery.produce(topic, key, value, partition=partition, headers=headers)
        self._unflushed = True

    def _counted(self, kind: str) -> Any:
        counter = self._output_counters.get(kind)
        if counter is None:
            counter = self._output_counters[kind] = metrics.OUTPUTS.labels(self._processor, kind)
        return counter

    async def accept(self, message: RawMessage) -> CloudEvent | None:
        """The event in `message`, or None once it has been dead-lettered."""
        try:
            return accept(message)
        except InvalidEvent as exc:
            await self.dead_letter(message, exc)
            return None

    async def dead_letter(self, message: RawMessage, problem: InvalidEvent) -> None:
        letter = rejection(message, problem, self._source)
        key = letter.partition_key()
        self._produce(
            DEAD_LETTER.name,
            None if key is None else key.encode(),
            encode(letter),
            headers=[("ce_type", letter.type.encode())],
        )
        await self.drained()  # acknowledged by the broker before the offset may move on
        metrics.DEAD_LETTERS.labels(message.topic).inc()

    async def drained(self) -> None:
        """Wait until the broker has acknowledged everything sent; raise if it refused any."""
        if not self._unflushed:
            return
        self._unflushed = False
        # flush blocks: off the event loop, so faust's consumer and heartbeats carry on.
        await asyncio.get_running_loop().run_in_executor(None, self._delivery.flush)
