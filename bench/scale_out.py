"""One worker process against N on the realistic simulated stream, every processor.

Publishes a simulated stream (orders, invoices, payments, refunds, payouts, bank lines,
customers, day closes) once, then lets `o2c worker --processes K` consume it from its first
offset, in a fresh application id for each K, and times it until the group has nothing
left on any topic it reads (internal ones included). Reported: seconds and input events/s
per K, and the ratio to one process.

    python -m bench.scale_out --orders 5000 --processes 1,2
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.processes import Process
from schemas.codec import decode
from schemas.topics import ALL_TOPICS, topic_for
from services.cli.output import table
from services.kafka_io import EventProducer, commit_offsets, end_offsets, ensure_topics, lag
from services.settings import get_settings
from services.simulator import SimConfig, simulate
from services.worker.processors import WORKER_INPUTS

INPUTS = [t.name for t in WORKER_INPUTS]


def publish_stream(bootstrap: str, orders: int, days: int, seed: int) -> int:
    stream, truth = io.BytesIO(), io.BytesIO()
    simulate(SimConfig(orders=orders, days=days, seed=seed), stream, truth)
    out = EventProducer(bootstrap)
    count = 0
    for raw in stream.getvalue().splitlines():
        if raw:
            event = decode(raw)
            out.send_raw(topic_for(event).name, event.partition_key(), raw, event.type)
            count += 1
    out.flush(300)
    return count


def run(bootstrap: str, processes: int, start: list[Any], published: int) -> dict[str, Any]:
    app_id = f"bench-scale-out-{processes}-{uuid.uuid4().hex[:6]}"
    commit_offsets(bootstrap, app_id, start)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            O2C_KAFKA_BOOTSTRAP=bootstrap,
            O2C_APP_ID=app_id,
            O2C_STATE_DIR=str(Path(tmp) / "state"),
            O2C_METRICS_PORT="0",
            O2C_SOURCE=app_id,
        )
        argv = [sys.executable, "-m", "services.cli.main", "worker", "--processes", str(processes)]
        worker = Process("worker", argv, env, Path(tmp) / "worker.log")
        started = time.monotonic()
        try:
            quiet = 0
            while quiet < 3:  # outputs to internal topics may still be in flight at lag 0
                worker.check()
                quiet = quiet + 1 if lag(bootstrap, app_id, INPUTS) == 0 else 0
                time.sleep(1)
                if time.monotonic() - started > 1800:
                    raise RuntimeError(f"{processes} processes not done after 30 min")
            seconds = time.monotonic() - started - 2  # the two quiet probes after the end
        finally:
            worker.stop()
    return {
        "processes": processes,
        "seconds": round(seconds, 1),
        "events_per_second": round(published / seconds),
    }


def measure(bootstrap: str, orders: int, counts: list[int], seed: int = 7) -> dict[str, Any]:
    ensure_topics(bootstrap, ALL_TOPICS)
    start = end_offsets(bootstrap, INPUTS)
    print(f"publishing a simulated stream of {orders} orders …", file=sys.stderr)
    published = publish_stream(bootstrap, orders, days=10, seed=seed)
    runs = []
    for count in counts:
        print(f"{count} worker process(es) …", file=sys.stderr)
        runs.append(run(bootstrap, count, start, published))
    one = next((r for r in runs if r["processes"] == 1), runs[0])
    for r in runs:
        r["speed_vs_one"] = round(one["seconds"] / r["seconds"], 2)
    return {"orders": orders, "input_events": published, "runs": runs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--processes", default="1,2", help="process counts to compare")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.processes.split(",")]
    result = measure(get_settings().kafka_bootstrap, args.orders, counts)
    print(
        table(
            ("processes", "seconds", "input events/s", "speed vs one"),
            [
                (r["processes"], r["seconds"], r["events_per_second"], r["speed_vs_one"])
                for r in result["runs"]
            ],
        )
    )
    print(f"{result['input_events']} input events, {result['orders']} orders")


if __name__ == "__main__":
    main()
