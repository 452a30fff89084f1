"""What a processor declares to the runtime, and what it sees of its task.

A processor is a thin shell: the runtime hands it one validated event at a time, in
event-time order within its task, with the task's store; it calls its pure core and
sends what the core returns through the task. It never touches Kafka itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import InvalidEvent, encode
from schemas.topics import DEAD_LETTER, Topic, destinations
from services import metrics
from services.runtime.delivery import Delivery, Headers
from services.runtime.edge import RawMessage, rejection
from services.runtime.store import Store, StoreSpec

S = TypeVar("S")


class Task(Protocol):
    """What a processor's `handle` may use of the task it runs in."""

    partition: int

    @property
    def store(self) -> Store[Any]: ...

    def send(self, events: Iterable[CloudEvent]) -> None: ...

    def send_raw(
        self,
        topic: Topic,
        key: str | None,
        value: bytes,
        headers: dict[str, bytes] | None = None,
        partition: int | None = None,
    ) -> None: ...

    def dead_letter(self, message: RawMessage, problem: InvalidEvent) -> None: ...


class Processor(Protocol):
    def handle(self, task: Task, message: RawMessage, event: CloudEvent) -> None: ...


@dataclass(frozen=True)
class ProcessorSpec(Generic[S]):
    """A processor: its co-partitioned inputs (in the rank that breaks event-time ties),
    its store (None for a stateless one) and its shell, built once per worker process."""

    name: str
    inputs: tuple[Topic, ...]
    store: StoreSpec[S] | None
    build: Callable[[], Processor]
    # Called before each batch of the processor (the bank-line router's customer directory
    # catches up with o2c.customers there).
    before_batch: Callable[[], None] | None = None

    @property
    def stateful(self) -> bool:
        return self.store is not None


@dataclass
class Outputs:
    """Sends on behalf of the tasks of one processor, through the process's producer."""

    processor: str
    source: str
    delivery: Delivery
    # Input event times of the outputs produced since the last flush, for the latency metric.
    causes: list[float] = field(default_factory=list)
    _counters: dict[str, Any] = field(default_factory=dict)

    def send(self, events: Iterable[CloudEvent]) -> None:
        for event in events:
            if event.source != self.source:  # the deployment's name for itself
                event = event.model_copy(update={"source": self.source})
            value = encode(event)
            headers: Headers = [("ce_type", event.type.encode())]
            for topic, key in destinations(event):
                self.delivery.produce(
                    topic.name, None if key is None else key.encode(), value, headers=headers
                )
            self._counted(event.type).inc()
            if isinstance(event, ev.MismatchDetected):
                metrics.MISMATCHES.labels(event.data.reason.value).inc()

    def send_raw(
        self,
        topic: Topic,
        key: str | None,
        value: bytes,
        headers: dict[str, bytes] | None = None,
        partition: int | None = None,
    ) -> None:
        listed: Headers | None = None if headers is None else list(headers.items())
        encoded = None if key is None else key.encode()
        self.delivery.produce(topic.name, encoded, value, partition=partition, headers=listed)

    def dead_letter(self, message: RawMessage, problem: InvalidEvent) -> None:
        send_dead_letter(self.delivery, message, problem, self.source)

    def _counted(self, kind: str) -> Any:
        counter = self._counters.get(kind)
        if counter is None:
            counter = self._counters[kind] = metrics.OUTPUTS.labels(self.processor, kind)
        return counter


def send_dead_letter(
    delivery: Delivery, message: RawMessage, problem: InvalidEvent, source: str
) -> None:
    """`message` to o2c.dead-letter with its bytes and the reason; acknowledged with the
    rest of its batch, before the batch's offsets are committed."""
    letter = rejection(message, problem, source)
    key = letter.partition_key()
    delivery.produce(
        DEAD_LETTER.name,
        None if key is None else key.encode(),
        encode(letter),
        headers=[("ce_type", letter.type.encode())],
    )
    metrics.DEAD_LETTERS.labels(message.topic).inc()


class TaskView:
    """The `Task` a processor's shell sees: its partition, its store, its outputs."""

    def __init__(self, partition: int, store: Store[Any] | None, outputs: Outputs) -> None:
        self.partition = partition
        self._store = store
        self._outputs = outputs
        self.cause_time = 0.0  # event time of the event being handled, in seconds

    @property
    def store(self) -> Store[Any]:
        if self._store is None:
            raise RuntimeError("a stateless processor has no store")
        return self._store

    def send(self, events: Iterable[CloudEvent]) -> None:
        listed = list(events)
        if listed:
            self._outputs.send(listed)
            self._outputs.causes.append(self.cause_time)

    def send_raw(
        self,
        topic: Topic,
        key: str | None,
        value: bytes,
        headers: dict[str, bytes] | None = None,
        partition: int | None = None,
    ) -> None:
        self._outputs.send_raw(topic, key, value, headers, partition)

    def dead_letter(self, message: RawMessage, problem: InvalidEvent) -> None:
        self._outputs.dead_letter(message, problem)


def observe_latency(outputs: Outputs) -> None:
    """After the broker acknowledged a batch: event time of each cause to now."""
    if not outputs.causes:
        return
    now = time.time()
    histogram = metrics.LATENCY.labels(outputs.processor)
    for cause in outputs.causes:
        histogram.observe(now - cause)
    outputs.causes.clear()
