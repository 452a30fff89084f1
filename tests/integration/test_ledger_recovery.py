"""Crash recovery and replay: the same inputs give the same outputs, ids and contents.

Each run is a worker in an application id of its own, started at the same input offsets,
writing with its own CloudEvents `source` so its outputs can be told apart. The inputs are
orders only (placed, amended, cancelled): with one input topic per key, the order in which
a worker reads them is fixed, so every run must produce exactly the same outputs.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from schemas.base import CloudEvent
from schemas.topics import MATCHES, MISMATCHES
from services.kafka_io import EventProducer
from tests.conftest import RunningWorker, Services, start_worker, stop_worker
from tests.factories import event, order_placed, unique
from tests.kafka_support import commit_offsets, end_offsets, lag_of

pytestmark = pytest.mark.integration

ORDERS = 1500
# Far from the business days other tests close, so no time-driven rule touches these orders.
WHEN = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)
Outputs = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Published:
    start: list[TopicPartition]
    event_ids: frozenset[str]


def _history() -> list[CloudEvent]:
    events: list[CloudEvent] = []
    for n in range(ORDERS):
        order_id = unique("REC")
        at = WHEN + timedelta(seconds=n)
        events.append(order_placed(order_id, "100.00", at=at, payment_terms_days=30))
        events.append(
            event(
                "order.amended",
                {"order_id": order_id, "total_amount": "120.00"},
                at=at + timedelta(minutes=1),
            )
        )
        if n % 5 == 0:
            events.append(
                event("order.cancelled", {"order_id": order_id}, at=at + timedelta(minutes=2))
            )
    return events


@pytest.fixture(scope="module")
def published(services: Services) -> Published:
    start = end_offsets(services.kafka_bootstrap)
    events = _history()
    out = EventProducer(services.kafka_bootstrap)
    for e in events:
        out.send(e)
    out.flush()
    return Published(start, frozenset(e.id for e in events))


def _output_ends(services: Services) -> list[TopicPartition]:
    return end_offsets(services.kafka_bootstrap, [MATCHES.name, MISMATCHES.name])


def _collect(
    services: Services, since: list[TopicPartition], source: str, causes: frozenset[str]
) -> Outputs:
    """Outputs written by `source` since `since`, about `causes`, deduplicated by id."""
    consumer = Consumer(
        {
            "bootstrap.servers": services.kafka_bootstrap,
            "group.id": "o2c-tests",
            "enable.auto.commit": False,
        }
    )
    consumer.assign(since)
    outputs: Outputs = {}
    last = time.monotonic()
    try:
        while time.monotonic() - last < 4:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            last = time.monotonic()
            document = orjson.loads(msg.value() or b"{}")
            if document.get("source") != source or document.get("causationid") not in causes:
                continue
            content = {k: v for k, v in document.items() if k != "source"}
            previous = outputs.setdefault(document["id"], content)
            assert previous == content, f"one output id, two contents: {previous} / {content}"
    finally:
        consumer.close()
    return outputs


# A replay from offset 0 reads the broker's whole history, which on a long-lived local
# stack is far more than this module publishes; the deadline grows with it.
CATCH_UP_FLOOR_EVENTS_PER_SECOND = 250


def _wait_until_processed(services: Services, app_id: str, timeout: float = 180) -> None:
    backlog = lag_of(services.kafka_bootstrap, app_id)
    timeout += backlog / CATCH_UP_FLOOR_EVENTS_PER_SECOND
    deadline = time.monotonic() + timeout
    while (behind := lag_of(services.kafka_bootstrap, app_id)) > 0:
        assert time.monotonic() < deadline, (
            f"{app_id} did not catch up in {timeout:.0f}s: {behind} of {backlog} messages left"
        )
        time.sleep(0.5)


def _run(
    services: Services,
    published: Published,
    workdir: Path,
    source: str,
    offset_reset: str = "earliest",
    start_at_published: bool = True,
) -> Outputs:
    app_id = f"{source}-{uuid.uuid4().hex[:8]}"
    if start_at_published:
        commit_offsets(services.kafka_bootstrap, app_id, published.start)
    since = _output_ends(services)
    worker = start_worker(services, workdir, app_id, offset_reset=offset_reset, O2C_SOURCE=source)
    try:
        _wait_until_processed(services, app_id)
    finally:
        stop_worker(worker)
    return _collect(services, since, source, published.event_ids)


@pytest.fixture(scope="module")
def uninterrupted(
    services: Services, published: Published, tmp_path_factory: pytest.TempPathFactory
) -> Outputs:
    outputs = _run(services, published, tmp_path_factory.mktemp("uninterrupted"), "run-a")
    assert len(outputs) >= 2 * ORDERS  # a balance.changed per placement and per amendment
    return outputs


def test_worker_killed_mid_stream_recovers_and_emits_what_an_uninterrupted_run_emits(
    services: Services, published: Published, uninterrupted: Outputs, tmp_path: Path
) -> None:
    source = "run-b"
    app_id = f"{source}-{uuid.uuid4().hex[:8]}"
    commit_offsets(services.kafka_bootstrap, app_id, published.start)
    since = _output_ends(services)
    first = start_worker(services, tmp_path / "first", app_id, O2C_SOURCE=source)
    # Kill it (no chance to flush or commit) once it has written some but not all outputs.
    _wait_for_outputs(services, since, source, published.event_ids, len(uninterrupted) // 10)
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()
    # Let the broker expire the dead member (session timeout 6 s) before its successor joins.
    time.sleep(8)
    before_kill = _collect(services, since, source, published.event_ids)
    assert len(before_kill) < len(uninterrupted), "the worker finished before it was killed"

    # A new state directory: the stores must come back from their changelog topics.
    running = start_worker(services, tmp_path / "second", app_id, O2C_SOURCE=source)
    try:
        recovered = _outputs_settle(services, since, source, published.event_ids, running)
    finally:
        stop_worker(running)
    print(
        f"outputs: uninterrupted {len(uninterrupted)}, before the kill {len(before_kill)}, "
        f"after recovery {len(recovered)}"
    )
    assert recovered.keys() == uninterrupted.keys()
    assert recovered == uninterrupted


def _outputs_settle(
    services: Services,
    since: list[TopicPartition],
    source: str,
    causes: frozenset[str],
    running: RunningWorker,
    quiet: float = 15,
    timeout: float = 240,
) -> Outputs:
    """The outputs once they stop growing; the worker must not stop on its own."""
    deadline = time.monotonic() + timeout
    outputs = _collect(services, since, source, causes)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        assert running.process.poll() is None, f"the worker stopped; see {running.log}"
        latest = _collect(services, since, source, causes)
        if latest == outputs:
            return latest
        outputs = latest
    return outputs


def _wait_for_outputs(
    services: Services, since: list[TopicPartition], source: str, causes: frozenset[str], count: int
) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": services.kafka_bootstrap,
            "group.id": "o2c-tests",
            "enable.auto.commit": False,
        }
    )
    consumer.assign(since)
    seen = 0
    deadline = time.monotonic() + 60
    try:
        while seen < count:
            assert time.monotonic() < deadline, f"the first worker wrote {seen} outputs in 60 s"
            for msg in consumer.consume(1000, timeout=0.1):
                if msg.error():
                    continue
                document = orjson.loads(msg.value() or b"{}")
                seen += document.get("source") == source and document.get("causationid") in causes
    finally:
        consumer.close()


def test_replay_from_offset_zero_in_a_fresh_application_gives_the_same_outputs(
    services: Services, published: Published, uninterrupted: Outputs, tmp_path: Path
) -> None:
    replayed = _run(services, published, tmp_path, "replay-c", start_at_published=False)
    assert replayed == uninterrupted
