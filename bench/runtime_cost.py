"""The runtime's own cost per event: the worker's loop around a core that does nothing.

Publishes an order stream, then runs services.runtime in this process with one no-op
processor over the same topics the ledger reads first (orders, payments), from the
stream's first offset to its last, beside a plain confluent-kafka + orjson consumer of
the same records. The no-op run still pays for what the runtime does per record:
fetching, validating the event at the edge (pydantic), the event-time merge, and the
per-batch flush, offset commit and checkpoint; the edge validation is measured alone
too, in process, so that the runtime's share without it can be read off.

    python -m bench.runtime_cost --orders 30000
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition

from bench.pipeline import _publish, baseline_consumer, order_stream
from schemas.base import CloudEvent
from schemas.codec import decode
from schemas.topics import ALL_TOPICS, ORDERS, PAYMENTS
from services.kafka_io import commit_offsets, end_offsets, ensure_topics
from services.runtime.edge import RawMessage
from services.runtime.engine import Runtime
from services.runtime.processor import ProcessorSpec, Task
from services.settings import Settings, get_settings


class _Count:
    def __init__(self, expected: int, runtime: list[Runtime]) -> None:
        self.expected = expected
        self.seen = 0
        self.first = self.last = 0.0
        self.runtime = runtime

    def handle(self, _task: Task, _message: RawMessage, _event: CloudEvent) -> None:
        if not self.seen:
            self.first = time.perf_counter()
        self.seen += 1
        if self.seen >= self.expected:
            self.last = time.perf_counter()
            self.runtime[0].stopping = True


def measure(bootstrap: str, orders: int) -> dict[str, Any]:
    ensure_topics(bootstrap, ALL_TOPICS)
    inputs = [ORDERS.name, PAYMENTS.name]
    run = uuid.uuid4().hex[:6]
    start = end_offsets(bootstrap, inputs)
    messages = list(order_stream(orders, run))
    published = _publish(bootstrap, iter(messages))
    baseline = baseline_consumer(bootstrap, start, published)
    started = time.perf_counter()
    for _topic, _key, value in messages:
        decode(value)
    validate_seconds = time.perf_counter() - started

    app_id = f"bench-noop-{run}"
    commit_offsets(
        bootstrap, app_id, [TopicPartition(t.topic, t.partition, t.offset) for t in start]
    )
    holder: list[Runtime] = []
    counter = _Count(published, holder)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            kafka_bootstrap=bootstrap, app_id=app_id, state_dir=Path(tmp), log_level="warning"
        )
        spec: ProcessorSpec[object] = ProcessorSpec(
            "noop", (ORDERS, PAYMENTS), None, lambda: counter
        )
        runtime = Runtime(settings, [spec])
        holder.append(runtime)
        runtime.run()
    seconds = counter.last - counter.first
    per_event_us = seconds / max(counter.seen - 1, 1) * 1e6
    validate_us = validate_seconds / published * 1e6
    return {
        "input_events": published,
        "handled": counter.seen,
        "seconds": round(seconds, 3),
        "events_per_second": round(counter.seen / seconds) if seconds else None,
        "runtime_us_per_event": round(per_event_us, 2),
        "edge_validation_us_per_event": round(validate_us, 2),
        "runtime_without_validation_us_per_event": round(per_event_us - validate_us, 2),
        "baseline": baseline,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.runtime_cost", description=__doc__)
    parser.add_argument("--orders", type=int, default=30_000)
    args = parser.parse_args(argv)
    result = measure(get_settings().kafka_bootstrap, args.orders)
    for key, value in result.items():
        print(f"{key:42} {value}")


if __name__ == "__main__":
    main()
