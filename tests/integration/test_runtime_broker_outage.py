"""The broker stopped for 30 s mid-stream and started again (issue #16): the worker waits,
resumes by itself (no restart from outside, no exit) and loses nothing: its outputs equal
those of a run without an outage.

It stops the Kafka broker, so it runs only when no one else can be using it: when the
tests started the local stack themselves (no O2C_KAFKA_BOOTSTRAP / O2C_DATABASE_URL, no
Docker: tests/conftest.py), or when O2C_TEST_BROKER_OUTAGE=1 says the broker at
O2C_KAFKA_BOOTSTRAP is a deploy/local stack that may be stopped (its folder is
$O2C_STACK_DIR, default <repo>/.local-stack). Kafka alone is stopped, by the pid the stack
records, and started again with `deploy/local/stack up`.

The stream is order facts (`orders_stream`), published while the worker runs: half before
the outage, half after it, so the worker is mid-stream when the broker goes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import date

import pytest

from schemas.base import CloudEvent
from tests.conftest import Services
from tests.runtime_support import (
    Document,
    OutputReader,
    Stream,
    Workers,
    describe_difference,
    event_ids,
    fresh_app,
    input_ends,
    orders_stream,
    output_ends,
    publish_live,
    reference_run,
    start_local_kafka,
    stop_local_kafka,
    workers,
)

pytestmark = pytest.mark.integration

ORDERS = 2000
SEED = 5151
START = date(2036, 2, 4)
OUTAGE_SECONDS = 30


@pytest.fixture(scope="module")
def may_stop_the_broker(services: Services) -> None:
    if os.environ.get("O2C_TEST_BROKER_OUTAGE") == "1" or services.origin == "deploy/local":
        return
    pytest.skip(
        f"stops the Kafka broker for {OUTAGE_SECONDS} s, which would break other users of "
        f"this one ({services.origin}, {services.kafka_bootstrap}): runs when the tests "
        "start the local stack themselves, or with O2C_TEST_BROKER_OUTAGE=1"
    )


@pytest.fixture(scope="module")
def events(may_stop_the_broker: None) -> list[CloudEvent]:
    return orders_stream(ORDERS, 4, SEED, START)


@pytest.fixture(scope="module")
def pool(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    yield from workers(services, tmp_path_factory.mktemp("outage"))


@pytest.fixture(scope="module")
def no_outage(services: Services, pool: Workers, events: list[CloudEvent]) -> dict[str, Document]:
    return reference_run(services, pool, Stream([events]), "rt-outage-ref")


@pytest.mark.timeout(600)
def test_the_worker_resumes_by_itself_after_the_broker_was_down_and_loses_nothing(
    services: Services, pool: Workers, events: list[CloudEvent], no_outage: dict[str, Document]
) -> None:
    source = "rt-outage"
    app_id = fresh_app(services, source, input_ends(services))
    reader = OutputReader(services, output_ends(services), source, event_ids(events))
    half = len(events) // 2
    broker_down = False
    try:
        worker = pool.start(app_id, name=source, env={"O2C_SOURCE": source})
        publish_live(services, events[:half], 5, 0.3)
        reader.wait_for(lambda r: len(r.unique) > 0, 60, "the first outputs", [worker])
        stop_local_kafka()
        broker_down = True
        stopped = time.monotonic()
        while time.monotonic() - stopped < OUTAGE_SECONDS:
            pool.assert_running(worker)  # waiting, not crashing
            time.sleep(1)
        start_local_kafka()
        broker_down = False
        pool.assert_running(worker)
        publish_live(services, events[half:], 5, 0.3)
        reader.wait_until(lambda r: no_outage.keys() <= r.unique.keys(), 240, [worker])
        reader.settle(quiet=3, timeout=60, what=source)
        pool.assert_running(worker)
        assert worker.log_text().count("Worker ready") >= 1
    finally:
        if broker_down:
            start_local_kafka()
        reader.close()
    assert not reader.conflicts, f"one output id, two contents: {reader.conflicts[0]}"
    outputs = reader.contents()
    assert outputs == no_outage, describe_difference(no_outage, outputs)
