"""SIGKILL at 20 seeded random points of a 3,000-order stream (issue #16).

The stream is the simulator's (`o2c simulate`), with identifiers of its own
(tests/runtime_support.py, `tag_stream`), restricted to what the ledger reads from its
input topics (`ledger_direct`: orders, invoices, payments, refunds, chargebacks, in the
simulator's mixed-topic delivery order with its late and duplicate deliveries). It is cut at
20 random event times. An uninterrupted worker reads it published at once; a second worker
in another application id gets it one segment at a time, published while it is down, and is
killed with SIGKILL after each segment once it has written a random share of that
segment's outputs, then started again: on an empty state directory every time (state comes
back from the changelog) or on the one it had. Its outputs, deduplicated by id, must equal
the uninterrupted run's, contents and ids included, and no id may carry two contents.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from tests.conftest import Services
from tests.runtime_support import (
    Document,
    Stream,
    Workers,
    describe_difference,
    killed_run,
    ledger_stream,
    reference_run,
    workers,
)

pytestmark = pytest.mark.integration

ORDERS = 3000
DAYS = 5
SEED = 1616
KILLS = 20
# Later than any business day other tests close, so no day.closed of theirs ages these orders.
START = date(2035, 3, 5)


@pytest.fixture(scope="module")
def stream() -> Stream:
    return ledger_stream(ORDERS, DAYS, SEED, START, KILLS)


@pytest.fixture(scope="module")
def pool(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    yield from workers(services, tmp_path_factory.mktemp("recovery"))


@pytest.fixture(scope="module")
def uninterrupted(services: Services, pool: Workers, stream: Stream) -> dict[str, Document]:
    outputs = reference_run(services, pool, stream, "rt-rec-ref")
    placed = sum(1 for e in stream.events if e.type == "o2c.order.placed.v1")
    # At least a balance.changed per placement: the run did the work.
    assert len(outputs) >= placed, f"{len(outputs)} outputs for {placed} orders placed"
    return outputs


@pytest.mark.timeout(900)
@pytest.mark.parametrize("keep_state", [False, True], ids=["empty-state-dir", "kept-state-dir"])
def test_sigkill_at_20_random_points_gives_the_uninterrupted_outputs(
    services: Services,
    pool: Workers,
    stream: Stream,
    uninterrupted: dict[str, Document],
    keep_state: bool,
) -> None:
    source = f"rt-rec-{'kept' if keep_state else 'empty'}"
    run = killed_run(
        services, pool, stream, uninterrupted, source, seed=SEED + keep_state, keep_state=keep_state
    )
    print(
        f"{source}: {run.kills} kills ({run.mid_segment_kills} before the segment's last "
        f"output), {len(run.records)} records, {len(run.outputs)} distinct, "
        f"uninterrupted {len(uninterrupted)}, {run.seconds:.0f}s"
    )
    assert run.kills == KILLS
    assert not run.conflicts, f"one output id, two contents: {run.conflicts[0]}"
    assert run.outputs == uninterrupted, describe_difference(uninterrupted, run.outputs)
