"""Exactly-once mode (issue #16): O2C_PROCESSING_GUARANTEE=exactly_once, the SIGKILL test
with 5 seeded random kill points, read back by a read_committed reader: not one output id
appears twice, and the outputs equal those of an uninterrupted at-least-once run.

Same stream and procedure as test_runtime_recovery.py (see tests/runtime_support.py,
`killed_run`), with the kept state directory.
"""

from __future__ import annotations

from collections import Counter
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
SEED = 4949
KILLS = 5
START = date(2035, 12, 3)
EXACTLY_ONCE = {"O2C_PROCESSING_GUARANTEE": "exactly_once"}


@pytest.fixture(scope="module")
def stream() -> Stream:
    return ledger_stream(ORDERS, 5, SEED, START, KILLS)


@pytest.fixture(scope="module")
def pool(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    yield from workers(services, tmp_path_factory.mktemp("exactly-once"))


@pytest.fixture(scope="module")
def uninterrupted(services: Services, pool: Workers, stream: Stream) -> dict[str, Document]:
    return reference_run(services, pool, stream, "rt-eos-ref")


@pytest.mark.timeout(600)
def test_a_read_committed_reader_never_sees_an_output_twice_across_sigkills(
    services: Services, pool: Workers, stream: Stream, uninterrupted: dict[str, Document]
) -> None:
    run = killed_run(
        services,
        pool,
        stream,
        uninterrupted,
        "rt-eos-killed",
        seed=SEED,
        keep_state=True,
        read_committed=True,
        env=EXACTLY_ONCE,
    )
    seen = Counter(record.id for record in run.records)
    twice = {i: n for i, n in seen.items() if n > 1}
    print(
        f"exactly-once: {run.kills} kills ({run.mid_segment_kills} before the segment's last "
        f"output), {len(run.records)} records, {len(twice)} ids seen more than once, "
        f"{run.seconds:.0f}s"
    )
    assert run.kills == KILLS
    assert not twice, (
        f"{len(twice)} output ids seen more than once by a read_committed reader, e.g. "
        f"{next(iter(twice))} x{next(iter(twice.values()))}"
    )
    assert not run.conflicts, f"one output id, two contents: {run.conflicts[0]}"
    assert run.outputs == uninterrupted, describe_difference(uninterrupted, run.outputs)
