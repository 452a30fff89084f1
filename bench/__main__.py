"""`make bench`: the ledger, in process and through the broker, beside same-run baselines.

In process: parsing with orjson only (the floor), decode + validate with the contract's
models, then decode + ledger + encode outputs. Accuracy of the cores against a simulated
stream's ground truth, beside the nightly batch SQL reconciliation of the same stream
(bench/batch_sql.py). Through the broker (bench/pipeline.py): one worker's throughput next
to a plain confluent-kafka consumer, and latency at fixed offered rates; then the read
side's projection throughput and rebuild (bench/projections.py). Results are printed as
tables and written to bench/results/*.json. The 1,000,000-order scale run is separate
(bench/scale.py): it needs a broker of its own and about an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import accuracy, batch_sql, pipeline, summary
from schemas.codec import decode, encode
from services.cli.output import table
from services.domain.ledger import Ledger, dump_state, load_state, new_ledger
from services.domain.matching import apply
from services.domain.policy import Policy
from services.samples.demo import demo_events
from services.settings import get_settings
from services.simulator import SimConfig, simulate

RESULTS = Path(__file__).parent / "results"
# balance.changed copies waiting for credit and suspense in the head-of-line latency run
FLOOD = 80_000
# The real payout and suspense cores, in place of the truth-driven oracles; and the credit
# core, which decides no reason code but belongs to "all the cores" of the run's timing.
REAL_SETTLEMENT_STAGES = (
    "bench.settlement_stages:PayoutStage",
    "bench.settlement_stages:SuspenseStage",
    "bench.settlement_stages:CreditStage",
)


def _messages(orders: int) -> list[bytes]:
    return [orjson.dumps(e) for e in demo_events(orders=orders)]


def _rate(name: str, messages: list[bytes], step: Callable[[bytes], Any]) -> dict[str, Any]:
    started = time.perf_counter()
    for raw in messages:
        step(raw)
    seconds = time.perf_counter() - started
    return {
        "name": name,
        "events": len(messages),
        "seconds": round(seconds, 4),
        "events_per_second": round(len(messages) / seconds),
    }


def core(orders: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """In-process rates of parse, decode and ledger; and what a stored ledger weighs."""
    messages = _messages(orders=orders)
    ledgers: dict[str, Ledger] = {}
    policy = Policy()

    def ledger_step(raw: bytes) -> None:
        event = decode(raw)
        key = event.partition_key()
        if key is None:
            return
        # Round-trip the state as the faust table does, so its cost is counted.
        stored = ledgers.get(key)
        ledger = stored if stored is not None else new_ledger(key)
        ledger = load_state(dump_state(ledger))
        updated, outputs = apply(ledger, event, policy, None)
        ledgers[key] = updated
        for output in outputs:
            encode(output)

    rows = [
        _rate("baseline: orjson parse only", messages, orjson.loads),
        _rate("decode + validate (pydantic)", messages, decode),
        _rate("decode + ledger apply + encode outputs", messages, ledger_step),
    ]
    return rows, stored_sizes(ledgers.values())


def stored_sizes(ledgers: Iterable[Ledger]) -> dict[str, Any]:
    """Bytes of the stored (serialized) ledger per order: all, and those still open."""
    every, still_open = [], []
    for ledger in ledgers:
        size = len(dump_state(ledger))
        every.append(size)
        if ledger.reported is not None and ledger.reported.open_balance != 0:
            still_open.append(size)
    return {
        "orders": len(every),
        "bytes_per_order": round(sum(every) / len(every)) if every else None,
        "open_orders": len(still_open),
        "bytes_per_open_order": round(sum(still_open) / len(still_open)) if still_open else None,
    }


def accuracy_against_batch_sql(orders: int, days: int, seed: int) -> dict[str, Any]:
    """One simulated stream, scored twice: the real cores in process, and the batch SQL."""
    with tempfile.TemporaryDirectory() as tmp:
        stream, truth = Path(tmp, "stream.jsonl"), Path(tmp, "truth.jsonl")
        with stream.open("wb") as out, truth.open("wb") as truth_out:
            simulate(SimConfig(orders=orders, days=days, seed=seed), out, truth_out)
        cores = accuracy.accuracy(
            orders, days, seed, str(stream), str(truth), stages=REAL_SETTLEMENT_STAGES
        )
        print("\nbatch SQL reconciliation of the same stream …", file=sys.stderr)
        sql = batch_sql.baseline(get_settings().database_url, stream, truth)
    by_reason = {s["reason"]: s for s in sql["scores"]}
    rows = [
        (
            s["reason"],
            s["expected"],
            accuracy._fmt(s["precision"]),
            accuracy._fmt(s["recall"]),
            accuracy._fmt(by_reason[s["reason"]]["precision"]),
            accuracy._fmt(by_reason[s["reason"]]["recall"]),
        )
        for s in cores["scores"]
    ]
    mine, theirs = cores["bank_lines"], sql["bank_lines"]
    rows.append(
        (
            "bank lines applied correctly",
            mine["lines"],
            f"{mine['share']:.1%}",
            "",
            f"{theirs['share']:.1%}",
            "",
        )
    )
    print()
    print(
        table(
            ("reason", "expected", "o2c precision", "o2c recall", "SQL precision", "SQL recall"),
            rows,
        )
    )
    print(
        f"o2c cores: {cores['stream_events']} events in {cores['seconds']} s, each decided as it "
        f"arrives; batch SQL: loaded in {sql['load_seconds']} s, reconciled in "
        f"{sql['reconcile_seconds']} s, once, after the last day closed"
    )
    return {"o2c": cores, "batch_sql": sql}


def _projections(orders: int) -> dict[str, Any]:
    from bench import projections

    settings = get_settings()
    print(f"read side: {orders} orders through {settings.kafka_bootstrap} …", file=sys.stderr)
    r = projections.run(
        settings.kafka_bootstrap,
        settings.database_url,
        orders,
        settings.projection_batch_max,
        rebuild_too=True,
    )
    p, b, v = r["projection"], r["rebuild"], r["projection_validating_all"]
    print(
        table(
            ("run", "events", "seconds", "events/s"),
            [
                (
                    "projection, every event validated (baseline)",
                    v["messages"],
                    v["seconds"],
                    v["events_per_second"],
                ),
                ("projection, one process", p["messages"], p["seconds"], p["events_per_second"]),
                (
                    "rebuild from offset 0 + swap",
                    b["messages"],
                    b["seconds"],
                    b["events_per_second"],
                ),
            ],
        )
    )
    print(f"rebuild of 1,000,000 events at that rate: {b['extrapolated_seconds_for_1m']} s")
    return r


def _through_the_broker(args: argparse.Namespace, exactly_once_too: bool) -> dict[str, Any]:
    from bench import runtime_cost

    results: dict[str, Any] = {}
    bootstrap = get_settings().kafka_bootstrap
    print(f"\nthe runtime around a no-op core: {args.orders} orders …", file=sys.stderr)
    r = results["runtime_cost"] = runtime_cost.measure(bootstrap, args.orders)
    print(
        table(
            ("run", "events", "seconds", "events/s", "µs/event"),
            [
                (
                    "baseline: confluent-kafka + orjson",
                    r["baseline"]["events"],
                    r["baseline"]["seconds"],
                    r["baseline"]["events_per_second"],
                    round(1e6 / r["baseline"]["events_per_second"], 2),
                ),
                (
                    "runtime, no-op core",
                    r["handled"],
                    r["seconds"],
                    r["events_per_second"],
                    r["runtime_us_per_event"],
                ),
                (
                    "of which edge validation (pydantic)",
                    "",
                    "",
                    "",
                    r["edge_validation_us_per_event"],
                ),
            ],
        )
    )
    print(f"\nthroughput through {bootstrap}: {args.orders} orders …", file=sys.stderr)
    t = pipeline.ledger_throughput(bootstrap, args.orders)
    results["throughput"] = t
    b = t["baseline"]
    print()
    print(
        table(
            ("consumer", "events", "seconds", "events/s"),
            [
                (
                    "baseline: confluent-kafka + orjson",
                    b["events"],
                    b["seconds"],
                    b["events_per_second"],
                ),
                (
                    "o2c worker (ledger)",
                    t["input_events"],
                    t["processing_seconds"],
                    t["events_per_second"],
                ),
            ],
        )
    )
    rates = [int(r) for r in args.rates.split(",")]
    guarantees = ["at_least_once", "exactly_once"] if exactly_once_too else ["at_least_once"]
    columns = ("offered_rate", "events", "outputs", "p50_ms", "p95_ms", "p99_ms", "max_ms")
    for guarantee in guarantees:
        print(
            f"\nlatency ({guarantee}) at {rates} events/s, {args.seconds:.0f} s each …",
            file=sys.stderr,
        )
        key = "latency" if guarantee == "at_least_once" else "latency_exactly_once"
        results[key] = pipeline.ledger_latency(
            bootstrap, rates, args.seconds, O2C_PROCESSING_GUARANTEE=guarantee
        )
        print()
        print(
            table(
                (
                    "guarantee",
                    "offered/s",
                    "events",
                    "outputs",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "max ms",
                ),
                [(guarantee, *(r.get(c, "-") for c in columns)) for r in results[key]],
            )
        )
    rate = min(rates)
    print(
        f"\nledger latency at {rate} events/s while credit and suspense drain "
        f"{FLOOD:,} balance.changed copies …",
        file=sys.stderr,
    )
    results["latency_during_flood"] = pipeline.ledger_latency(
        bootstrap, [rate], args.seconds, flood=FLOOD
    )
    print()
    print(
        table(
            ("while", "offered/s", "events", "outputs", "p50 ms", "p95 ms", "p99 ms", "max ms"),
            [
                (f"{FLOOD:,} copies wait", *(r.get(c, "-") for c in columns))
                for r in results["latency_during_flood"]
            ],
        )
    )
    return results


def _save(name: str, results: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    machine = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    path.write_text(json.dumps({"at": stamp, "results": results, "machine": machine}, indent=2))
    print(f"\nwritten {path}\n")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--orders", type=int, default=50_000, help="orders for throughput")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per offered rate")
    parser.add_argument("--rates", default="500,2000,5000", help="offered rates, events/s")
    parser.add_argument("--core-only", action="store_true", help="skip the broker benchmarks")
    parser.add_argument(
        "--accuracy-orders", type=int, default=20_000, help="orders of the accuracy stream"
    )
    parser.add_argument(
        "--read-side-orders", type=int, default=50_000, help="orders for the projection run"
    )
    parser.add_argument(
        "--accuracy", action="store_true", help="only accuracy against simulated ground truth"
    )
    parser.add_argument(
        "--throughput",
        action="store_true",
        help="only the runtime through the broker: its own cost, throughput, and latency "
        "at least once and exactly once (a few minutes)",
    )
    parser.add_argument(
        "--projections",
        type=int,
        metavar="ORDERS",
        help="only the read side: project ~4 events per order into PostgreSQL, then rebuild",
    )
    args = parser.parse_args()
    if args.accuracy:
        accuracy.main([f"--stage={stage}" for stage in REAL_SETTLEMENT_STAGES])
        return
    if args.throughput:
        _save("throughput", _through_the_broker(args, exactly_once_too=True))
        return
    if args.projections:
        r = _projections(args.projections)
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"projections-{stamp}.json"
        path.write_text(json.dumps({"at": stamp, "results": r}, indent=2))
        print(f"written {path}")
        return

    results: dict[str, Any] = {}
    print("ledger core, in process …", file=sys.stderr)
    results["core"], results["stored_ledger"] = core(orders=20_000)
    rows = [(r["name"], r["events"], r["seconds"], r["events_per_second"]) for r in results["core"]]
    print(table(("step", "events", "seconds", "events/s"), rows))
    print("\naccuracy against simulated ground truth …", file=sys.stderr)
    results["accuracy"] = accuracy_against_batch_sql(orders=args.accuracy_orders, days=20, seed=7)
    if not args.core_only:
        results.update(_through_the_broker(args, exactly_once_too=False))
        print()
        results["projections"] = _projections(args.read_side_orders)
    _save("bench", results)
    print(summary.goals(results))


if __name__ == "__main__":
    main()
