"""Faults around the worker (issue #21): a worker killed with SIGKILL in the middle of a
rebalance, and the broker killed with SIGKILL mid-stream and started again. In each the
outputs equal those of a run without the fault: nothing lost, nothing with other
contents, nothing extra, and no step from outside but starting what was killed.

The stream is order facts (`orders_stream`): one topic, one key per order, so a correct
run's outputs are fixed by the log whatever the timing (see tests/runtime_support.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from confluent_kafka import KafkaError, KafkaException

from schemas.base import CloudEvent
from tests.conftest import Services
from tests.fault_support import (
    Figures,
    FlakyProxy,
    kill_local_kafka,
    may_break_the_stack,
    proxied_listener,
    record,
    restart_local_kafka,
    start_local_stack,
)
from tests.runtime_support import (
    Document,
    OutputReader,
    Stream,
    Worker,
    Workers,
    describe_difference,
    event_ids,
    fresh_app,
    input_ends,
    input_lag,
    orders_stream,
    output_ends,
    publish,
    reference_run,
    workers,
)
from tests.runtime_support import (
    _free_port as free_port,
)

pytestmark = pytest.mark.faults

ORDERS = 1500
DELAY = 0.02  # seconds a chunk waits in the proxy, each way
DROP_EVERY = 4.0  # seconds between connection cuts
DROPPING_SECONDS = 20.0
SEED = 2121
START = date(2037, 3, 2)

Fault = Callable[[str, str, list[Worker]], tuple[list[Worker], float]]


@pytest.fixture(scope="module")
def events() -> list[CloudEvent]:
    return orders_stream(ORDERS, 4, SEED, START)


@pytest.fixture(scope="module")
def pool(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    yield from workers(services, tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def no_fault(services: Services, pool: Workers, events: list[CloudEvent]) -> dict[str, Document]:
    return reference_run(services, pool, Stream([events]), "flt-ref")


def caught_up(services: Services, app_id: str, timeout: float, running: list[Worker]) -> None:
    """Until `app_id` has committed every input record. A broker just started again may
    answer the question with a transient error (its coordinator still loading): asked
    again."""
    deadline = time.monotonic() + timeout
    while True:
        for worker in running:
            assert worker.alive(), f"{worker.name} exited; log:\n{worker.log_text()[-4000:]}"
        try:
            if input_lag(services, app_id) == 0:
                return
        except KafkaException as exc:
            error = exc.args[0]
            if not (error.retriable() or error.code() == KafkaError.NOT_COORDINATOR):
                raise
        assert time.monotonic() < deadline, f"{app_id} not caught up after {timeout:.0f}s"
        time.sleep(0.5)


def run_with_fault(
    services: Services,
    pool: Workers,
    events: list[CloudEvent],
    reference: dict[str, Document],
    scenario: str,
    fault_name: str,
    fault: Fault,
    worker_env: dict[str, str] | None = None,
    notes: Callable[[], dict[str, object]] = dict,
) -> Figures:
    """One worker on the stream's first half, published in two quarters;
    `fault(app_id, source, running)` hits once the first quarter's first outputs are out
    and the second quarter is published, and returns the workers running when it is over and the
    moment it was (the kill, or the server answering again); then the second half.
    Records and returns the figures."""
    source = f"flt-{scenario}"
    app_id = fresh_app(services, source, input_ends(services))
    reader = OutputReader(services, output_ends(services), source, event_ids(events))
    quarter, half = len(events) // 4, len(events) // 2
    try:
        env = {"O2C_SOURCE": source, **(worker_env or {})}
        running = [pool.start(app_id, name=source, env=env)]
        publish(services, events[:quarter])
        reader.wait_for(lambda r: len(r.unique) > 0, 120, "the first outputs", running)
        # The fault hits as soon as the second quarter is acknowledged: mid-stream.
        publish(services, events[quarter:half])
        reader.poll(0.1)
        before = len(reader.unique)
        hit = time.monotonic()
        running, over = fault(app_id, source, running)
        caught_up(services, app_id, 300, running)
        recovered = time.monotonic()
        publish(services, events[half:])
        reader.wait_until(lambda r: reference.keys() <= r.unique.keys(), 240, running)
        reader.settle(quiet=3, timeout=60, what=source)
        pool.assert_running(*running)
    finally:
        reader.close()
    outputs = reader.contents()
    lost = len(reference.keys() - outputs.keys())
    extra = len(outputs.keys() - reference.keys())
    changed = sum(1 for i in reference.keys() & outputs.keys() if reference[i] != outputs[i])
    figures = Figures(
        notes=notes(),
        scenario=scenario,
        fault=fault_name,
        events_in=len(events),
        outputs_expected=len(reference),
        outputs_accounted=len(reference) - lost - changed,
        lost=lost,
        duplicated=extra + changed + len(reader.conflicts),
        redelivered=len(reader.records) - len(reader.unique),
        outputs_before_fault=before,
        fault_seconds=round(over - hit, 1),
        recovery_seconds=round(recovered - over, 1),
    )
    record(figures)
    assert not reader.conflicts, f"one output id, two contents: {reader.conflicts[0]}"
    assert outputs == reference, describe_difference(reference, outputs)
    return figures


@pytest.mark.timeout(900)
def test_a_worker_killed_during_a_rebalance_loses_and_duplicates_nothing(
    services: Services, pool: Workers, events: list[CloudEvent], no_fault: dict[str, Document]
) -> None:
    def kill_first_while_second_joins(
        app_id: str, source: str, running: list[Worker]
    ) -> tuple[list[Worker], float]:
        (first,) = running
        revoked = first.log_text().count("revoked")
        second = pool.start(app_id, name=f"{source}-b", wait=False, env={"O2C_SOURCE": source})
        # The second joining makes the group rebalance: the first gives up its partitions
        # (eager protocol) and is killed then, before the new assignment is done.
        deadline = time.monotonic() + 120
        while first.log_text().count("revoked") == revoked:
            assert time.monotonic() < deadline, "the first worker never revoked its partitions"
            pool.assert_running(first, second)
            time.sleep(0.05)
        pool.kill(first)
        killed = time.monotonic()
        pool.wait_ready(second, timeout=180)
        return [second], killed

    figures = run_with_fault(
        services,
        pool,
        events,
        no_fault,
        "worker-killed-in-rebalance",
        "SIGKILL of one of two workers while the group rebalances",
        kill_first_while_second_joins,
    )
    assert figures.clean


@pytest.mark.timeout(900)
def test_the_broker_killed_mid_stream_and_started_again_loses_and_duplicates_nothing(
    services: Services, pool: Workers, events: list[CloudEvent], no_fault: dict[str, Document]
) -> None:
    reason = may_break_the_stack(services.origin)
    if reason is not None:
        pytest.skip(reason)

    def kill_the_broker(
        _app_id: str, _source: str, running: list[Worker]
    ) -> tuple[list[Worker], float]:
        try:
            kill_local_kafka()
            time.sleep(5)
            pool.assert_running(*running)  # waiting for the broker, not crashing
        finally:
            start_local_stack()
        return running, time.monotonic()

    figures = run_with_fault(
        services,
        pool,
        events,
        no_fault,
        "broker-killed",
        "SIGKILL of the Kafka broker, down 5 s, started again by deploy/local/stack up",
        kill_the_broker,
    )
    assert figures.clean


@pytest.fixture
def proxied_broker(services: Services) -> Iterator[tuple[int, int]]:
    """(the broker's listener for the proxy, the port it advertises, where the proxy is to
    listen). `make test-faults` starts its stack with that listener; on another stack of
    this run's own the broker is started again with it, and always started again as it
    was afterwards, whatever happened in between."""
    reason = may_break_the_stack(services.origin)
    if reason is not None:
        pytest.skip(reason)
    ready = proxied_listener()
    if ready is not None:
        yield ready
        return
    listener, advertised = free_port(), free_port()
    try:
        restart_local_kafka(
            O2C_KAFKA_PROXIED_PORT=str(listener),
            O2C_KAFKA_PROXIED_ADVERTISED_PORT=str(advertised),
        )
        yield listener, advertised
    finally:
        restart_local_kafka()


@pytest.mark.timeout(900)
def test_a_slow_network_that_drops_connections_loses_and_duplicates_nothing(
    services: Services,
    pool: Workers,
    events: list[CloudEvent],
    no_fault: dict[str, Document],
    proxied_broker: tuple[int, int],
) -> None:
    listener, advertised = proxied_broker
    proxy = FlakyProxy(advertised, listener, delay=DELAY, drop_every=DROP_EVERY)

    def drop_connections(
        _app_id: str, _source: str, running: list[Worker]
    ) -> tuple[list[Worker], float]:
        proxy.dropping.set()
        deadline = time.monotonic() + DROPPING_SECONDS
        while time.monotonic() < deadline:
            pool.assert_running(*running)  # reconnecting, not crashing
            time.sleep(0.5)
        proxy.dropping.clear()
        return running, time.monotonic()

    try:
        figures = run_with_fault(
            services,
            pool,
            events,
            no_fault,
            "slow-flaky-network",
            f"worker <-> broker through a TCP proxy: +{DELAY * 1000:.0f} ms a chunk each way, "
            f"every connection cut each {DROP_EVERY:.0f} s for {DROPPING_SECONDS:.0f} s",
            drop_connections,
            worker_env={"O2C_KAFKA_BOOTSTRAP": f"127.0.0.1:{advertised}"},
            notes=lambda: {"drops": proxy.drops, "connections": proxy.connections},
        )
    finally:
        proxy.close()
    assert proxy.drops >= 2, f"the proxy cut connections only {proxy.drops} times"
    assert figures.clean
