"""Scale-out (issue #16): two and three worker processes in one consumer group, one killed
with SIGKILL and one added while the stream is being published, give the outputs of one
worker.

The stream is the order facts of a 3,000-order simulated stream (`orders_stream`): one
topic and one key per order, so the outputs of a correct runtime do not depend on when
records arrive, and the stream can be published while the group works, as upstream systems
publish, so the kill and the new member land mid-stream even for a fast runtime. Tasks
move between processes with their state (restored from the changelog); the killed
process's tasks move only once its session has expired (6 s), without a commit.
"""

from __future__ import annotations

import os
import signal
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
    Worker,
    Workers,
    describe_difference,
    event_ids,
    fresh_app,
    input_ends,
    orders_stream,
    output_ends,
    publish_live,
    reference_run,
    worker_processes,
    workers,
)

pytestmark = pytest.mark.integration

ORDERS = 3000
SEED = 2727
START = date(2035, 6, 4)
CHUNKS, PAUSE = 20, 0.5
KILL_AFTER, ADD_AFTER = 5, 11  # chunks


@pytest.fixture(scope="module")
def events() -> list[CloudEvent]:
    return orders_stream(ORDERS, 5, SEED, START)


@pytest.fixture(scope="module")
def pool(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    yield from workers(services, tmp_path_factory.mktemp("scale"))


@pytest.fixture(scope="module")
def one_worker(services: Services, pool: Workers, events: list[CloudEvent]) -> dict[str, Document]:
    outputs = reference_run(services, pool, Stream([events]), "rt-scale-ref")
    assert len(outputs) >= sum(e.type == "o2c.order.placed.v1" for e in events)
    return outputs


def _children(worker: Worker, at_least: int, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while len(found := worker_processes(worker.process.pid)) < at_least:
        assert time.monotonic() < deadline, (
            f"`o2c worker --processes` has child processes {found} after {timeout:.0f}s, "
            f"expected at least {at_least}"
        )
        time.sleep(0.2)
    return found


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("mode", "processes"),
    [("commands", 2), ("commands", 3), ("processes", 3)],
    ids=["2-commands", "3-commands", "processes-3"],
)
def test_a_group_with_a_member_killed_and_one_added_gives_the_outputs_of_one_worker(
    services: Services,
    pool: Workers,
    events: list[CloudEvent],
    one_worker: dict[str, Document],
    mode: str,
    processes: int,
) -> None:
    source = f"rt-scale-{mode}-{processes}"
    app_id = fresh_app(services, source, input_ends(services))
    env = {"O2C_SOURCE": source}
    reader = OutputReader(services, output_ends(services), source, event_ids(events))
    members: list[Worker] = []
    killed: list[Worker] = []
    try:
        if mode == "commands":
            # Several `o2c worker` commands with one application id.
            for n in range(processes):
                members.append(pool.start(app_id, name=f"{source}-{n}", env=env))
        else:
            group = pool.start(app_id, name=f"{source}-group", processes=processes, env=env)
            members.append(group)
            # A supervising parent with N children, or a worker parent with N - 1.
            _children(group, max(1, processes - 1))

        def between(chunk: int) -> None:
            if chunk == KILL_AFTER:
                if mode == "commands":
                    pool.kill(members[0])
                    killed.append(members[0])
                else:
                    child = worker_processes(members[0].process.pid)[0]
                    os.kill(child, signal.SIGKILL)
            if chunk == ADD_AFTER:
                members.append(pool.start(app_id, name=f"{source}-added", wait=False, env=env))

        publish_live(services, events, CHUNKS, PAUSE, between)
        added = members[-1]
        pool.wait_ready(added)
        alive = [m for m in members if m not in killed]
        reader.wait_until(lambda r: one_worker.keys() <= r.unique.keys(), 240, alive)
        reader.settle(quiet=3, timeout=60, what=source)
        pool.assert_running(*alive)
        assert not reader.conflicts, f"one output id, two contents: {reader.conflicts[0]}"
        outputs = reader.contents()
        print(f"{source}: {len(reader.records)} records, {len(outputs)} distinct")
        assert outputs == one_worker, describe_difference(one_worker, outputs)
    finally:
        reader.close()
        for member in members:
            pool.stop(member)
