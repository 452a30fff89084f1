"""A small pipeline run for read-side tests: the simulator's stream through the session's
`o2c worker` into a fresh read schema, so the views hold what a real run produces (every
reason code, several currencies and channels, closed days with DSO and ageing)."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from datetime import date

from schemas.events import ReasonCode
from schemas.topics import OUTPUT_TOPICS
from services import kafka_io
from services.simulator.config import SimConfig
from services.simulator.run import simulate
from tests.conftest import RunningWorker, Services
from tests.kafka_support import lag_of
from tests.projection_support import catch_up, start_at_end
from tests.runtime_support import new_tag, publish, tag_stream

# Every reason code in a few hundred orders, rather than the default's 0.4 % each.
ANOMALY_RATE = 0.03


def fill_read_schema(
    services: Services,
    worker: RunningWorker,
    schema: str,
    *,
    orders: int = 300,
    days: int = 20,
    start: date = SimConfig.start,
) -> None:
    """Publish a tagged simulated stream, wait for the worker to have handled it and its
    outputs to stop growing, then project everything since `schema` was created."""
    start_at_end(services, schema)
    rates = dict.fromkeys(ReasonCode, ANOMALY_RATE)
    lines = simulated_with(orders, days, start, rates)
    publish(services, tag_stream(lines, new_tag()))
    _wait_for_worker(services, worker)
    catch_up(services, schema)


def simulated_with(
    orders: int, days: int, start: date, rates: Mapping[ReasonCode, float]
) -> list[bytes]:
    """The simulator's stream (`o2c simulate`) with these anomaly rates, as encoded lines."""
    out, truth = io.BytesIO(), io.BytesIO()
    simulate(SimConfig(orders=orders, days=days, seed=7, start=start, rates=rates), out, truth)
    return out.getvalue().splitlines()


def _wait_for_worker(services: Services, worker: RunningWorker, timeout: float = 240) -> None:
    """Until the worker's group has committed every input and the output topics have not
    grown for a few seconds (outputs of internal hops come after the inputs' commit)."""
    app_id = worker.env["O2C_APP_ID"]
    deadline = time.monotonic() + timeout
    ends: list[tuple[str, int, int]] = []
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        now = sorted(
            (tp.topic, tp.partition, tp.offset)
            for tp in kafka_io.end_offsets(
                services.kafka_bootstrap, [t.name for t in OUTPUT_TOPICS]
            )
        )
        if now != ends:
            ends, quiet_since = now, time.monotonic()
        elif lag_of(services.kafka_bootstrap, app_id) == 0 and time.monotonic() - quiet_since > 4:
            return
        time.sleep(1.0)
    raise TimeoutError(f"worker {app_id} still busy after {timeout:.0f}s")
