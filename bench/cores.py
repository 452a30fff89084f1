"""Speed of the matching cores in process (issue #17), each beside the same run's floor.

Rows, each the median of `--repeat` runs (the machine is shared):
- the ledger core on the bench's stream (services/samples/demo.py): decode, state load,
  apply, state dump, encode outputs, per event; beside orjson parsing the same bytes; and
  the same through the ledger task's store (RocksDB) in batches of 500 events, where the
  store parses a ledger once per batch unless its cache of recent states holds it, and
  stores it once per batch (not the issue's row, labelled apart);
- all the cores (ledger, payout, suspense, invoice references, credit) on the accuracy
  stream, as bench/accuracy.py runs them, decoding each line; beside orjson parsing it;
- the stored ledger's bytes per order, on the bench's stream;
- `balance.changed` through the credit and suspense cores for one customer holding 10,
  100, 1,000 or 10,000 open items, decoded once for both: with the states kept in memory
  (a task's cache), and with each state loaded and stored around every event (the
  worker's table without a cache); and through the credit and suspense tasks' stores
  (RocksDB, each event a batch), each customer one value or each open item a record of
  its own; beside orjson parsing the same bytes.

    python -m bench.cores                  # all rows, written to bench/results/cores-*.json
    python -m bench.cores --only ledger    # one group: ledger, all, balance
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from bench import accuracy
from bench.accuracy import build_stages, run_stream
from bench.golden import ALL_CORES
from schemas import events as ev
from schemas.codec import decode, encode
from services.cli.output import table
from services.domain import credit, ledger, native, suspense
from services.domain.matching import apply, may_change_with_time
from services.domain.outputs import output
from services.domain.policy import Policy
from services.runtime.store import Codec, Memory, Store, StoreSpec
from services.samples.demo import demo_events
from services.simulator import SimConfig, simulate
from services.simulator.truth import read_truth
from services.worker.credit_processor import STORED_APART as CREDIT_APART
from services.worker.settlement_processors import SUSPENSE_APART

RESULTS = Path(__file__).parent / "results"
OPEN_ITEMS = (10, 100, 1_000, 10_000)


def _median_rate(events: int, run: Callable[[], object], repeat: int) -> dict[str, Any]:
    """Wall and CPU seconds of `repeat` runs. On a shared machine the CPU seconds of this
    process are the steadier figure: what one worker on a core of its own would reach."""
    seconds, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        run()
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    median, median_cpu = statistics.median(seconds), statistics.median(cpu)
    return {
        "events": events,
        "seconds_median": round(median, 4),
        "seconds_all": [round(s, 4) for s in seconds],
        "cpu_seconds_median": round(median_cpu, 4),
        "events_per_second": round(events / median),
        "events_per_cpu_second": round(events / median_cpu) if median_cpu else None,
    }


def _parse_only(messages: list[bytes]) -> None:
    for raw in messages:
        orjson.loads(raw)


# --- the ledger core ----------------------------------------------------------------------


def ledger_messages(orders: int) -> list[bytes]:
    return [orjson.dumps(e) for e in demo_events(orders=orders)]


def run_ledger(messages: Iterable[bytes], policy: Policy) -> dict[str, bytes]:
    """Each event as the ledger processor handles it; returns the stored ledgers."""
    stored: dict[str, bytes] = {}
    for raw in messages:
        event = decode(raw)
        key = event.partition_key()
        if key is None:
            continue
        before = stored.get(key)
        state = ledger.load_state(before) if before is not None else ledger.new_ledger(key)
        updated, outputs = apply(state, event, policy, None)
        if updated is not state:
            time_driven = may_change_with_time(updated, policy)
            stored[key] = ledger.dump_state(updated, time_driven=time_driven)
        for out in outputs:
            encode(out)
    return stored


def run_ledger_in_store(messages: list[bytes], policy: Policy, batch: int = 500) -> None:
    """Each event as the worker handles it, through the ledger task's store (RocksDB) in
    batches of `batch` events: a ledger read in a batch is parsed once (or not at all when
    the store's cache of recent states holds it) and stored once, at the batch's end, with
    the changelog records the runtime would produce. Not the issue's row: that one loads
    and stores every event's ledger."""

    def dump(state: ledger.Ledger) -> bytes:
        return ledger.dump_state(state, time_driven=may_change_with_time(state, policy))

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(StoreSpec("ledgers", Codec(ledger.load_state, dump)), Path(tmp), Memory())
        for offset, raw in enumerate(messages, start=1):
            event = decode(raw)
            key = event.partition_key()
            if key is not None:
                stored_key = key.encode()
                state = store.get(stored_key) or ledger.new_ledger(key)
                updated, outputs = apply(state, event, policy, None)
                if updated is not state:
                    store.put(stored_key, updated)
                for out in outputs:
                    encode(out)
            if offset % batch == 0 or offset == len(messages):
                store.changes()
                store.checkpoint(offset)
        store.close()


def ledger_breakdown(orders: int) -> dict[str, Any]:
    """Where the ledger core's time goes, per event, by step (perf_counter around each)."""
    messages = ledger_messages(orders)
    policy = Policy()
    stored: dict[str, bytes] = {}
    spent: dict[str, int] = defaultdict(int)
    clock = time.perf_counter_ns
    for raw in messages:
        t0 = clock()
        event = decode(raw)
        key = event.partition_key()
        t1 = clock()
        spent["decode"] += t1 - t0
        if key is None:
            continue
        before = stored.get(key)
        state = ledger.load_state(before) if before is not None else ledger.new_ledger(key)
        t2 = clock()
        updated, outputs = apply(state, event, policy, None)
        t3 = clock()
        if updated is not state:
            time_driven = may_change_with_time(updated, policy)
            stored[key] = ledger.dump_state(updated, time_driven=time_driven)
        t4 = clock()
        for out in outputs:
            encode(out)
        t5 = clock()
        spent["state load"] += t2 - t1
        spent["apply"] += t3 - t2
        spent["state dump"] += t4 - t3
        spent["encode outputs"] += t5 - t4
    total = sum(spent.values())
    return {
        "events": len(messages),
        "microseconds_per_event": {k: round(v / len(messages) / 1000, 2) for k, v in spent.items()}
        | {"total": round(total / len(messages) / 1000, 2)},
    }


def ledger_rows(orders: int, repeat: int) -> dict[str, Any]:
    messages = ledger_messages(orders)
    policy = Policy()
    stored = run_ledger(messages, policy)
    return {
        "orders": orders,
        "baseline: orjson parse only": _median_rate(
            len(messages), lambda: _parse_only(messages), repeat
        ),
        "ledger core": _median_rate(len(messages), lambda: run_ledger(messages, policy), repeat),
        "ledger core through the task store, batches of 500, its cache of recent states": (
            _median_rate(len(messages), lambda: run_ledger_in_store(messages, policy), repeat)
        ),
        "stored ledger bytes per order": round(sum(len(v) for v in stored.values()) / len(stored)),
    }


# --- all the cores on the accuracy stream -------------------------------------------------


def all_cores_rows(orders: int, days: int, seed: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        stream, truth_path = Path(tmp, "stream.jsonl"), Path(tmp, "truth.jsonl")
        with stream.open("wb") as out, truth_path.open("wb") as truth_out:
            simulate(SimConfig(orders=orders, days=days, seed=seed), out, truth_out)
        truth = read_truth(truth_path)
        lines = [line for line in stream.read_bytes().splitlines() if line.strip()]

        def run() -> None:
            run_stream(stream, build_stages(truth, Policy(), ALL_CORES))

        return {
            "orders": orders,
            "days": days,
            "seed": seed,
            "baseline: orjson parse only": _median_rate(
                len(lines), lambda: _parse_only(lines), repeat
            ),
            "all cores": _median_rate(len(lines), run, repeat),
        }


def all_cores_breakdown(orders: int, days: int, seed: int) -> dict[str, Any]:
    """CPU seconds of one run of all the cores on the accuracy stream, by stage: each core's
    handle and close_day, decoding, the garbage collector, and the harness (the rest)."""
    with tempfile.TemporaryDirectory() as tmp:
        stream, truth_path = Path(tmp, "stream.jsonl"), Path(tmp, "truth.jsonl")
        with stream.open("wb") as out, truth_path.open("wb") as truth_out:
            simulate(SimConfig(orders=orders, days=days, seed=seed), out, truth_out)
        stages = build_stages(read_truth(truth_path), Policy(), ALL_CORES)
        spent: dict[str, float] = defaultdict(float)

        def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            def run(*args: Any) -> Any:
                started = time.process_time()
                try:
                    return fn(*args)
                finally:
                    spent[name] += time.process_time() - started

            return run

        for stage in stages:
            stage.handle = timed(stage.role, stage.handle)  # type: ignore[method-assign]
            stage.close_day = timed(stage.role, stage.close_day)  # type: ignore[method-assign]
        gc_started: list[float] = []

        def gc_timer(phase: str, _info: dict[str, Any]) -> None:
            if phase == "start":
                gc_started.append(time.process_time())
            elif gc_started:
                spent["garbage collector (inside the above)"] += (
                    time.process_time() - gc_started.pop()
                )

        original_decode = accuracy.__dict__["decode"]
        setattr(accuracy, "decode", timed("decode", original_decode))  # noqa: B010
        gc.callbacks.append(gc_timer)
        started = time.process_time()
        try:
            run = run_stream(stream, stages)
        finally:
            total = time.process_time() - started
            gc.callbacks.remove(gc_timer)
            setattr(accuracy, "decode", original_decode)  # noqa: B010
    inside = sum(v for k, v in spent.items() if not k.startswith("garbage"))
    return {
        "events": run.events,
        "cpu_seconds": round(total, 3),
        "events_per_cpu_second": round(run.events / total),
        "cpu_seconds_by_stage": {
            **{k: round(v, 3) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])},
            "harness (routing, recording outputs)": round(total - inside, 3),
        },
    }


# --- balance.changed against open items per customer --------------------------------------

CUSTOMER = "cust-bench"
ORIGIN = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _balance(n: int, open_balance: Decimal, moment: datetime, cause: str) -> bytes:
    order_id = f"ord-{n:06d}"
    data = ev.BalanceChangedData(
        order_id=order_id,
        customer_id=CUSTOMER,
        currency="EUR",
        receivable=Decimal("100.00"),
        paid=Decimal("100.00") - open_balance,
        refunded=Decimal("0.00"),
        settled=Decimal("0.00"),
        open_balance=open_balance,
        status="open" if open_balance == Decimal("100.00") else "partially_paid",
        due_date=date(2026, 12, 1),
        channel="b2b",
    )
    cause_event = ev.DayClosed(
        specversion="1.0",
        id=cause,
        source="bench",
        type="o2c.day.closed.v1",
        time=moment,
        data=ev.DayClosedData(date=moment.date()),
    )
    return encode(output(ev.BalanceChanged, data, cause_event, order_id))


def _customer() -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": "customer-bench",
            "source": "bench",
            "type": "o2c.customer.upserted.v1",
            "time": ORIGIN.isoformat(),
            "data": {
                "customer_id": CUSTOMER,
                "name": "Bench GmbH",
                "credit_limit": "100000000.00",
                "currency": "EUR",
            },
        }
    )


def balance_states(items: int) -> tuple[credit.CreditState, suspense.Suspense]:
    """One customer's credit and suspense states holding `items` open items."""
    rules = suspense.SuspenseRules()
    c = credit.apply(credit.new_state(CUSTOMER), decode(_customer()))[0]
    s = suspense.new_suspense(CUSTOMER)
    for n in range(items):
        event = decode(_balance(n, Decimal("100.00"), ORIGIN, f"setup-{n}"))
        c = credit.apply(c, event)[0]
        s = suspense.apply(s, event, rules)[0]
    return c, s


def balance_messages(items: int, count: int) -> list[bytes]:
    """`count` balance.changed of orders the customer already has: part payments."""
    return [
        _balance(
            n % items,
            Decimal("100.00") - Decimal(n % 97 + 1),
            ORIGIN + timedelta(seconds=n),
            f"pay-{n}",
        )
        for n in range(count)
    ]


def run_balances(
    messages: list[bytes], start: tuple[credit.CreditState, suspense.Suspense], stored: bool
) -> None:
    rules = suspense.SuspenseRules()
    c, s = start
    raw_c, raw_s = credit.dump_state(c), suspense.dump_state(s)
    for raw in messages:
        event = decode(raw)
        if stored:
            c, s = credit.load_state(raw_c), suspense.load_state(raw_s)
        c_after = credit.apply(c, event)[0]
        s_after = suspense.apply(s, event, rules)[0]
        if stored:
            if c_after is not c:
                raw_c = credit.dump_state(c_after)
            if s_after is not s:
                raw_s = suspense.dump_state(s_after)
        c, s = c_after, s_after


def _stores(root: Path, apart: bool) -> tuple[Store[Any], Store[Any]]:
    """The credit and suspense tasks' stores as the worker builds them: each open item a
    record of its own (`apart`), or each customer one value (the codec alone)."""
    c_codec = Codec(credit.load_state, credit.dump_state, CREDIT_APART if apart else None)
    s_codec = Codec(suspense.load_state, suspense.dump_state, SUSPENSE_APART if apart else None)
    return (
        Store(StoreSpec("credit", c_codec), root / "credit", Memory()),
        Store(StoreSpec("suspense", s_codec), root / "suspense", Memory()),
    )


def run_balances_in_store(
    messages: list[bytes], start: tuple[credit.CreditState, suspense.Suspense], apart: bool
) -> None:
    """Each event a batch of its own through the tasks' stores (RocksDB), as the worker
    handles a backlog of many customers: get, apply, put, then the batch's changelog
    records and checkpoint. The store's cache of recent states keeps the customer parsed,
    so what grows with the customer is what a batch writes."""
    rules = suspense.SuspenseRules()
    key = CUSTOMER.encode()
    with tempfile.TemporaryDirectory() as tmp:
        stores = _stores(Path(tmp), apart)
        for store, state in zip(stores, start, strict=True):
            store.get(key)
            store.put(key, state)
            store.changes()
            store.checkpoint(0)
        c_store, s_store = stores
        for offset, raw in enumerate(messages, start=1):
            event = decode(raw)
            c = c_store.get(key)
            assert c is not None
            c_after = credit.apply(c, event)[0]
            if c_after is not c:
                c_store.put(key, c_after)
            s = s_store.get(key)
            assert s is not None
            s_after = suspense.apply(s, event, rules)[0]
            if s_after is not s:
                s_store.put(key, s_after)
            for store in stores:
                if store.dirty:
                    store.changes()
                    store.checkpoint(offset)
        for store in stores:
            store.close()


def balance_rows(count: int, repeat: int, sizes: Iterable[int] = OPEN_ITEMS) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for items in sizes:
        start = balance_states(items)
        messages = balance_messages(items, count)
        # Fewer events when every one loads and stores the whole customer: it is slow.
        stored_messages = messages[: max(50, min(count, 200_000 // items))]
        rows[str(items)] = {
            "baseline: orjson parse only": _median_rate(
                len(messages), partial(_parse_only, messages), repeat
            ),
            "credit + suspense, states in memory": _median_rate(
                len(messages), partial(run_balances, messages, start, False), repeat
            ),
            "credit + suspense, states loaded and stored per event": _median_rate(
                len(stored_messages),
                partial(run_balances, stored_messages, start, True),
                repeat,
            ),
            "credit + suspense through the task stores, one value per customer": _median_rate(
                len(stored_messages),
                partial(run_balances_in_store, stored_messages, start, False),
                repeat,
            ),
            "credit + suspense through the task stores, one record per open item": _median_rate(
                len(messages), partial(run_balances_in_store, messages, start, True), repeat
            ),
            "stored bytes: credit": len(credit.dump_state(start[0])),
            "stored bytes: suspense": len(suspense.dump_state(start[1])),
        }
    return rows


# --- printing -----------------------------------------------------------------------------


def _row(name: str, r: dict[str, Any]) -> tuple[object, ...]:
    return (
        name,
        r["events"],
        r["seconds_median"],
        r["events_per_second"],
        r["events_per_cpu_second"],
    )


def print_results(results: dict[str, Any]) -> None:
    rows: list[tuple[object, ...]] = []
    if "ledger" in results:
        r = results["ledger"]
        rows += [_row(f"ledger: {k}", v) for k, v in r.items() if isinstance(v, dict)]
    if "all" in results:
        r = results["all"]
        rows += [_row(f"accuracy stream: {k}", v) for k, v in r.items() if isinstance(v, dict)]
    if "balance" in results:
        for items, r in results["balance"].items():
            rows += [
                _row(f"{items} open items: {k}", v) for k, v in r.items() if isinstance(v, dict)
            ]
    print(table(("row", "events", "wall s (median)", "events/s", "events/cpu-s"), rows))
    if "ledger" in results:
        print(f"stored ledger: {results['ledger']['stored ledger bytes per order']} bytes/order")
    if "balance" in results:
        for items, r in results["balance"].items():
            print(
                f"{items} open items: stored credit {r['stored bytes: credit']} bytes, "
                f"suspense {r['stored bytes: suspense']} bytes"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cores", description=__doc__)
    parser.add_argument(
        "--only",
        choices=("ledger", "all", "balance", "breakdown", "ledger-breakdown"),
        action="append",
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ledger-orders", type=int, default=20_000)
    parser.add_argument("--accuracy-orders", type=int, default=20_000)
    parser.add_argument("--balances", type=int, default=5_000, help="events per open-item row")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--gc-gen0",
        type=int,
        metavar="N",
        help="the worker's collector settings to measure: gen0 threshold N, and gc.freeze() "
        "of everything built before the rows run",
    )
    args = parser.parse_args(argv)
    if args.gc_gen0:
        gc.collect()
        gc.freeze()
        gc.set_threshold(args.gc_gen0, *gc.get_threshold()[1:])
        print(
            f"gc: threshold {gc.get_threshold()}, {gc.get_freeze_count()} frozen", file=sys.stderr
        )
    groups = args.only or ["ledger", "all", "balance"]
    print(native.summary(), file=sys.stderr)  # compiled or pure Python (O2C_PURE_PYTHON=1)
    results: dict[str, Any] = {}
    if "ledger" in groups:
        print("ledger core …", file=sys.stderr)
        results["ledger"] = ledger_rows(args.ledger_orders, args.repeat)
    if "all" in groups:
        print("all cores on the accuracy stream …", file=sys.stderr)
        results["all"] = all_cores_rows(args.accuracy_orders, 20, 7, args.repeat)
    if "ledger-breakdown" in groups:
        results["ledger_breakdown"] = ledger_breakdown(args.ledger_orders)
        print(json.dumps(results["ledger_breakdown"], indent=2))
    if "breakdown" in groups:
        print("all cores on the accuracy stream, by stage …", file=sys.stderr)
        results["breakdown"] = all_cores_breakdown(args.accuracy_orders, 20, 7)
        print(json.dumps(results["breakdown"], indent=2))
    if "balance" in groups:
        print("balance.changed against open items …", file=sys.stderr)
        results["balance"] = balance_rows(args.balances, args.repeat)
    if set(groups) - {"breakdown", "ledger-breakdown"}:
        print_results(results)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"cores-{stamp}.json"
        machine = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "rules": native.summary(),
        }
        path.write_text(json.dumps({"at": stamp, "results": results, "machine": machine}, indent=2))
        print(f"written {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
