"""Replay from offset 0 of a mixed-topic stream in two fresh application ids (issue #16):
identical outputs, ids included, and in the same order for every key.

The stream is what the ledger reads straight from its input topics in a 1,000-order
simulated stream (`ledger_direct`: orders, invoices, payments, refunds and chargebacks,
with the simulator's late and duplicate deliveries across topics), published once. Each
replay reads every input topic from offset 0 (the whole shared broker's history; the
deadline grows with it) and starts at the end of the internal topics, which other
applications on the broker write (tests/runtime_support.py). Only outputs caused by this
stream's events are compared; `source`, which names the run, is left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest

from tests.conftest import Services
from tests.runtime_support import (
    Document,
    OutputReader,
    Stream,
    Workers,
    describe_difference,
    fresh_app,
    input_lag,
    ledger_stream,
    output_ends,
    publish,
    sequences,
    wait_until_consumed,
    workers,
)

pytestmark = pytest.mark.integration

ORDERS = 1000
SEED = 3838
START = date(2035, 9, 3)
# The slowest catch-up the deadline allows for, over the broker's whole history.
FLOOR_EVENTS_PER_SECOND = 250


@dataclass(frozen=True)
class Replay:
    outputs: dict[str, Document]
    order: dict[tuple[str, bytes | None], list[str]]
    records: int


@pytest.fixture(scope="module")
def stream(services: Services) -> Stream:
    s = ledger_stream(ORDERS, 4, SEED, START, 0)
    publish(services, s.events)
    return s


@pytest.fixture(scope="module")
def pool(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    yield from workers(services, tmp_path_factory.mktemp("replay"))


def _replay(services: Services, pool: Workers, stream: Stream, source: str) -> Replay:
    app_id = fresh_app(services, source, None)  # inputs: no offsets, so from offset 0
    reader = OutputReader(services, output_ends(services), source, stream.ids)
    try:
        backlog = input_lag(services, app_id)
        worker = pool.start(app_id, name=source, env={"O2C_SOURCE": source})
        wait_until_consumed(
            services, app_id, 180 + backlog / FLOOR_EVENTS_PER_SECOND, running=[worker]
        )
        reader.settle(quiet=5, timeout=120, what=source)
        pool.assert_running(worker)
        pool.stop(worker)
        assert not reader.conflicts, f"one output id, two contents: {reader.conflicts[0]}"
        print(f"{source}: {backlog} input records from offset 0, {len(reader.unique)} outputs")
        return Replay(reader.contents(), sequences(reader.records), len(reader.records))
    finally:
        reader.close()


@pytest.mark.timeout(900)
def test_two_replays_from_offset_zero_give_identical_outputs_ids_and_order(
    services: Services, pool: Workers, stream: Stream
) -> None:
    first = _replay(services, pool, stream, "rt-replay-a")
    second = _replay(services, pool, stream, "rt-replay-b")
    placed = sum(e.type == "o2c.order.placed.v1" for e in stream.events)
    assert len(first.outputs) >= placed, f"{len(first.outputs)} outputs for {placed} orders"
    assert second.outputs == first.outputs, describe_difference(first.outputs, second.outputs)
    differing = [k for k in first.order if first.order[k] != second.order.get(k)]
    assert not differing, (
        f"{len(differing)} keys saw their outputs in another order, e.g. {differing[0]}: "
        f"{first.order[differing[0]]} / {second.order.get(differing[0])}"
    )
    assert second.records == first.records, "one replay wrote an output twice"
