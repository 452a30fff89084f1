"""The runtime's protocol without a broker: the order of a commit's steps, offsets that never
pass an unhandled record, re-routing of records on the wrong partition, and a failing core
that commits nothing. A fake consumer and producer record what the runtime asks of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import TopicPartition

from schemas.base import CloudEvent
from schemas.codec import encode
from schemas.topics import ORDERS, PAYMENTS
from services.runtime.edge import RawMessage
from services.runtime.engine import ORIGIN_TOPIC, CoreFailed, Runtime
from services.runtime.partitioning import partition_of
from services.runtime.processor import ProcessorSpec, Task
from services.runtime.store import Codec, StoreSpec
from services.settings import Settings
from tests.factories import order_placed, payment_captured

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


@dataclass
class FakeMessage:
    _topic: str
    _partition: int
    _offset: int
    _key: bytes | None
    _value: bytes
    _headers: list[tuple[str, bytes]] | None = None

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (1, int(T0.timestamp() * 1000))


@dataclass
class Calls:
    log: list[str] = field(default_factory=list)


class FakeDelivery:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.produced: list[tuple[str, bytes | None, int | None, list[Any] | None]] = []
        self._offsets: dict[tuple[str, int], int] = {}

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: list[Any] | None = None,
    ) -> None:
        self.calls.log.append(f"produce {topic}")
        self.produced.append((topic, key, partition, headers))
        if partition is not None:
            place = (topic, partition)
            self._offsets[place] = self._offsets.get(place, -1) + 1

    def flush(self) -> None:
        self.calls.log.append("flush")

    def take_offsets(self) -> dict[tuple[str, int], int]:
        taken, self._offsets = self._offsets, {}
        return taken


class FakeConsumer:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.commits: list[list[tuple[str, int, int]]] = []
        self.positions: dict[tuple[str, int], int] = {}
        self.highs: dict[tuple[str, int], int] = {}  # high watermarks; default: the position

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.calls.log.append("commit offsets")
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(
                tp.topic, tp.partition, self.positions.get((tp.topic, tp.partition), -1001)
            )
            for tp in partitions
        ]

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool = False) -> tuple[int, int]:
        place = (tp.topic, tp.partition)
        return (0, self.highs.get(place, self.positions.get(place, 0)))

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.calls.log.append(f"resume {len(partitions)}")

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, -1001) for tp in partitions]


class Counting:
    """A stateful core that counts the events of a key, and can be told to fail."""

    def __init__(self) -> None:
        self.fail_on: str | None = None

    def handle(self, task: Task, message: RawMessage, event: CloudEvent) -> None:
        if event.id == self.fail_on:
            raise ZeroDivisionError("a bug in the core")
        key = message.key or b""
        task.store.put(key, (task.store.get(key) or 0) + 1)


def _runtime(tmp_path: Path) -> tuple[Runtime, Calls, FakeDelivery, FakeConsumer, Counting]:
    settings = Settings(
        kafka_bootstrap="127.0.0.1:1", app_id="unit", state_dir=tmp_path, instance_id="one"
    )
    core = Counting()
    store = StoreSpec("counts", Codec(lambda raw: int(raw), lambda n: str(n).encode()))
    runtime = Runtime(
        settings, [ProcessorSpec("counting", (ORDERS, PAYMENTS), store, lambda: core)]
    )
    calls = Calls()
    delivery, consumer = FakeDelivery(calls), FakeConsumer(calls)
    runtime.delivery = delivery  # type: ignore[assignment]
    runtime._consumer = consumer  # type: ignore[assignment]
    for outputs in runtime.outputs.values():
        outputs.delivery = delivery  # type: ignore[assignment]
    partitions = [TopicPartition(t, p) for t in (ORDERS.name, PAYMENTS.name) for p in range(12)]
    runtime.assignment = partitions
    for p in range(12):
        runtime._create_task(runtime.specs[0], p, {})
    return runtime, calls, delivery, consumer, core


def _placed(order_id: str) -> tuple[int, bytes, bytes]:
    event = order_placed(order_id, "10.00")
    return partition_of(order_id.encode(), 12), order_id.encode(), encode(event)


def test_a_commit_acknowledges_outputs_then_changelog_then_offsets_then_checkpoints(
    tmp_path: Path,
) -> None:
    runtime, calls, _delivery, consumer, _core = _runtime(tmp_path)
    partition, key, value = _placed("ORD-1")
    runtime._take(FakeMessage(ORDERS.name, partition, 7, key, value))  # type: ignore[arg-type]
    consumer.positions[(ORDERS.name, partition)] = 8
    assert runtime._run_tasks() == 1

    calls.log.clear()
    runtime._commit()

    assert calls.log == ["flush", "produce unit-counts-changelog", "flush", "commit offsets"]
    assert (ORDERS.name, partition, 8) in consumer.commits[0]
    store = runtime.stores[("counts", partition)]
    assert store.get(key) == 1
    assert not store.dirty
    assert store.checkpointed() == 1  # the changelog offset after its one record


def test_offsets_stop_at_the_first_record_a_task_has_not_handled(tmp_path: Path) -> None:
    runtime, _calls, _delivery, consumer, _core = _runtime(tmp_path)
    order_id = "ORD-2"
    partition = partition_of(order_id.encode(), 12)
    placed = encode(order_placed(order_id, "10.00", at=T0))
    later = encode(payment_captured("pay-2", order_id, "10.00", at=T0.replace(hour=12)))
    runtime._take(FakeMessage(ORDERS.name, partition, 3, order_id.encode(), placed))  # type: ignore[arg-type]
    runtime._take(FakeMessage(PAYMENTS.name, partition, 5, order_id.encode(), later))  # type: ignore[arg-type]
    consumer.positions.update({(ORDERS.name, partition): 4, (PAYMENTS.name, partition): 6})
    # More orders wait on the broker, possibly older than the payment: the task holds it.
    consumer.highs[(ORDERS.name, partition)] = 10
    runtime.max_idle = 60.0

    assert runtime._run_tasks() == 1
    offsets = {(tp.topic, tp.partition): tp.offset for tp in runtime._offsets_to_commit()}

    assert offsets[(ORDERS.name, partition)] == 4  # handled
    assert offsets[(PAYMENTS.name, partition)] == 5  # still buffered, not past it


def test_a_record_on_another_partition_than_its_keys_goes_to_the_rerouted_topic(
    tmp_path: Path,
) -> None:
    runtime, _calls, delivery, _consumer, _core = _runtime(tmp_path)
    right, key, value = _placed("ORD-3")
    wrong = (right + 5) % 12

    runtime._take(FakeMessage(ORDERS.name, wrong, 11, key, value))  # type: ignore[arg-type]

    assert not runtime.tasks[("counting", wrong)].buffered
    ((topic, produced_key, partition, headers),) = delivery.produced
    assert (topic, produced_key, partition) == ("unit-rerouted", key, right)
    assert dict(headers or [])[ORIGIN_TOPIC] == ORDERS.name.encode()


def test_a_rerouted_record_is_handled_as_its_original_topic_in_its_keys_task(
    tmp_path: Path,
) -> None:
    runtime, _calls, _delivery, _consumer, _core = _runtime(tmp_path)
    right, key, value = _placed("ORD-4")
    origin = [(ORIGIN_TOPIC, ORDERS.name.encode()), ("o2c-origin-partition", b"0")]

    runtime._take(FakeMessage("unit-rerouted", right, 0, key, value, origin))  # type: ignore[arg-type]
    runtime._run_tasks()

    assert runtime.stores[("counts", right)].get(key) == 1


def test_a_failing_core_stops_the_batch_and_commits_nothing(tmp_path: Path) -> None:
    runtime, calls, _delivery, _consumer, core = _runtime(tmp_path)
    partition, key, value = _placed("ORD-5")
    core.fail_on = orjson.loads(value)["id"]
    runtime._take(FakeMessage(ORDERS.name, partition, 0, key, value))  # type: ignore[arg-type]

    with pytest.raises(CoreFailed):
        runtime._run_tasks()

    assert "commit offsets" not in calls.log
    assert runtime.stores[("counts", partition)].checkpointed() == 0


def test_an_assignment_resumes_partitions_this_process_paused_before_the_rebalance(
    tmp_path: Path,
) -> None:
    """librdkafka keeps a partition paused across an eager reassignment: without a resume,
    a partition paused for back-pressure before a rebalance never moved again."""
    settings = Settings(
        kafka_bootstrap="127.0.0.1:1", app_id="unit", state_dir=tmp_path, instance_id="one"
    )
    stateless: ProcessorSpec[object] = ProcessorSpec("noop", (ORDERS,), None, Counting)
    runtime = Runtime(settings, [stateless])
    calls = Calls()
    consumer = FakeConsumer(calls)
    runtime.paused = {(ORDERS.name, 3)}
    partitions = [TopicPartition(ORDERS.name, p) for p in range(12)]

    runtime._assigned(consumer, partitions)  # type: ignore[arg-type]

    assert "resume 12" in calls.log
    assert not runtime.paused
