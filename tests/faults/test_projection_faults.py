"""Faults around the read side (issue #21): the projection process killed with SIGKILL
mid-stream and started again, and PostgreSQL killed with SIGKILL (its postmaster) while
the projection writes, then started again. In each the read models hold exactly the rows
a projection without a fault writes from the same offsets: none missing, none extra.

The input is balance changes on o2c.matches, published in two halves, the first in two
quarters: the fault hits once the first batch of the first quarter is in and the second
quarter has just been published, so the projection has work in hand. It runs
as `o2c projections run` (its own process group) in a schema of its own that starts where
the topics end, with small batches so that the fault lands between batches and inside one.
Both of the projections that command runs are compared: the read models and, beside them,
the timeline (and its exception queue).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from projections.migrate import migrate
from projections.runner import PROJECTION, end_positions
from projections.store import Position
from projections.timeline import PROJECTION as TIMELINE
from projections.timeline import TimelineRunner
from schemas.base import CloudEvent
from tests.conftest import Services, service_env
from tests.factories import T0
from tests.fault_support import (
    Figures,
    catch_up_projections,
    kill_local_postgres,
    may_break_the_stack,
    record,
    start_local_stack,
    start_projections_at_end,
)
from tests.projection_support import PROJECTED_TABLES, balance, dump, publish
from tests.runtime_support import O2C, new_tag

pytestmark = pytest.mark.faults

ORDERS = 1500
CHANGES = 4  # balance changes per order
PROBE = 60  # events published once the fault is over
SESSION_TIMEOUT = 10  # seconds (the default is 30)
COMPARED_TABLES = (*PROJECTED_TABLES, "timeline", "exception_queue")


@dataclass
class Projection:
    """One `o2c projections run` command, a process group."""

    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_projection(services: Services, tmp_path: Path) -> Iterator[Callable[[str], Projection]]:
    started: list[Projection] = []

    def start(schema: str) -> Projection:
        log = tmp_path / "projection.log"
        # A restarted process gets its partitions once the killed one's session is over.
        env = service_env(
            services,
            O2C_READ_SCHEMA=schema,
            O2C_PROJECTION_BATCH_MAX="200",
            O2C_SESSION_TIMEOUT_SECONDS=str(SESSION_TIMEOUT),
        )
        with log.open("ab") as out:
            process = subprocess.Popen(
                [O2C, "projections", "run"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        started.append(Projection(process, log))
        return started[-1]

    yield start
    for projection in started:
        projection.stop()


@pytest.fixture
def schemas(services: Services) -> Iterator[tuple[str, str]]:
    """Two fresh read schemas (the faulted run's and the reference's), dropped afterwards."""
    tag = new_tag().lower()
    names = (f"fault_{tag}", f"ref_{tag}")
    for name in names:
        migrate(services.database_url, name)
    yield names
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def balance_changes(tag: str) -> list[CloudEvent]:
    events = []
    for n in range(ORDERS):
        order_id = f"ORD-{tag}{n:07d}"
        for k in range(CHANGES):
            events.append(
                balance(
                    order_id,
                    T0 + timedelta(minutes=n, seconds=k),
                    receivable="100.00",
                    paid=f"{10 * k}.00",
                    due="2026-12-01",
                    customer_id=f"CUST-{tag}{n % 50:03d}",
                )
            )
    return events


def stored(services: Services, schema: str, projection: str = PROJECTION) -> dict[Position, int]:
    """Where `projection` of `schema` is (the read models'; the timeline keeps its own)."""
    with psycopg.connect(services.database_url, connect_timeout=5) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT topic, partition, next_offset FROM {}.projection_offsets"
                " WHERE projection = %s"
            ).format(sql.Identifier(schema)),
            (projection,),
        ).fetchall()
    return {(str(t), int(p)): int(o) for t, p, o in rows}


def wait_reached(
    services: Services,
    schema: str,
    targets: dict[Position, int],
    timeout: float,
    what: str,
    running: Projection,
    projection: str = PROJECTION,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert running.alive(), f"the projection exited; log:\n{running.log_text()[-4000:]}"
        with contextlib.suppress(psycopg.OperationalError):
            at = stored(services, schema, projection)
            if all(at.get(pos, 0) >= end for pos, end in targets.items() if end > 0):
                return
        assert time.monotonic() < deadline, f"{what} not reached after {timeout:.0f}s"
        time.sleep(0.2)


def rows(services: Services, schema: str) -> Counter[tuple[str, tuple[Any, ...]]]:
    found = dump(services, schema, COMPARED_TABLES)
    return Counter((table, row) for table, rows in found.items() for row in rows)


Fault = Callable[[Projection], tuple[Projection, float]]


def run_with_fault(
    services: Services,
    schemas: tuple[str, str],
    start_projection: Callable[[str], Projection],
    scenario: str,
    fault_name: str,
    fault: Fault,
) -> Figures:
    faulted, reference = schemas
    for schema in schemas:
        start_projections_at_end(services.kafka_bootstrap, services.database_url, schema)
    events = balance_changes(new_tag())
    quarter, half = len(events) // 4, len(events) // 2
    origin = stored(services, faulted)
    projection = start_projection(faulted)
    publish(services, events[:quarter])
    deadline = time.monotonic() + 120
    while stored(services, faulted) == origin:  # the first batch is in
        assert time.monotonic() < deadline, "the projection wrote nothing in 120 s"
        assert projection.alive(), projection.log_text()[-4000:]
        time.sleep(0.05)
    # The fault hits as soon as the second quarter is acknowledged: mid-stream.
    publish(services, events[quarter:half])
    before = sum(c for (t, _r), c in rows(services, faulted).items() if t == "balance_history")
    hit = time.monotonic()
    projection, over = fault(projection)
    # A probe published once the fault is over: recovered when it is in too, so a
    # projection that had the first half in before the fault still shows how long it
    # takes to write again.
    publish(services, events[half : half + PROBE])
    wait_reached(
        services, faulted, end_positions(services.kafka_bootstrap), 300, "the probe", projection
    )
    recovered = time.monotonic()
    publish(services, events[half + PROBE :])
    everything = end_positions(services.kafka_bootstrap)
    wait_reached(services, faulted, everything, 300, "the whole stream", projection)
    timeline_ends = end_positions(services.kafka_bootstrap, TimelineRunner.topics)
    wait_reached(services, faulted, timeline_ends, 300, "the timeline's end", projection, TIMELINE)
    assert projection.alive(), projection.log_text()[-4000:]
    catch_up_projections(services.kafka_bootstrap, services.database_url, reference)
    expected, actual = rows(services, reference), rows(services, faulted)
    lost = sum((expected - actual).values())
    extra = sum((actual - expected).values())
    figures = Figures(
        scenario=scenario,
        fault=fault_name,
        events_in=len(events),
        outputs_expected=sum(expected.values()),
        outputs_accounted=sum(expected.values()) - lost,
        lost=lost,
        duplicated=extra,
        redelivered=0,
        outputs_before_fault=before,
        fault_seconds=round(over - hit, 1),
        recovery_seconds=round(recovered - over, 1),
        notes={"unit": "PostgreSQL read-model rows"},
    )
    record(figures)
    history = sum(c for (t, _r), c in expected.items() if t == "balance_history")
    assert history == len(events), f"the reference projection has {history} history rows"
    assert lost == 0, f"{lost} rows missing: {list((expected - actual).elements())[:3]}"
    assert extra == 0, f"{extra} rows extra: {list((actual - expected).elements())[:3]}"
    return figures


@pytest.mark.timeout(900)
def test_the_projection_killed_mid_stream_and_started_again_writes_every_row_once(
    services: Services,
    schemas: tuple[str, str],
    start_projection: Callable[[str], Projection],
) -> None:
    def kill_and_restart(projection: Projection) -> tuple[Projection, float]:
        projection.kill()
        return start_projection(schemas[0]), time.monotonic()

    figures = run_with_fault(
        services,
        schemas,
        start_projection,
        "projection-killed",
        "SIGKILL of `o2c projections run` mid-stream, started again",
        kill_and_restart,
    )
    assert figures.clean


@pytest.mark.timeout(900)
def test_postgres_killed_while_the_projection_writes_loses_and_duplicates_no_row(
    services: Services,
    schemas: tuple[str, str],
    start_projection: Callable[[str], Projection],
) -> None:
    reason = may_break_the_stack(services.origin)
    if reason is not None:
        pytest.skip(reason)

    def kill_the_database(projection: Projection) -> tuple[Projection, float]:
        try:
            kill_local_postgres()
            time.sleep(3)
            assert projection.alive(), projection.log_text()[-4000:]  # waiting, not crashing
        finally:
            start_local_stack()
        return projection, time.monotonic()

    figures = run_with_fault(
        services,
        schemas,
        start_projection,
        "postgres-killed",
        "SIGKILL of the PostgreSQL postmaster while the projection writes, down 3 s, "
        "started again by deploy/local/stack up (crash recovery)",
        kill_the_database,
    )
    assert figures.clean
