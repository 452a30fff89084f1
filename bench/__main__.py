"""`make bench`: the ledger core against a same-run baseline, on the same events.

Baseline: parsing each message with orjson only (the floor of any consumer). Measured:
decode + validate with the contract's models, then decode + validate + apply the ledger.
Broker-level throughput and latency benchmarks arrive with the full ledger (issue 4).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from schemas.codec import decode, encode
from services.cli.output import table
from services.domain.ledger import Ledger, dump_state, load_state, new_ledger
from services.domain.matching import apply
from services.domain.policy import Policy
from services.samples.demo import demo_events

RESULTS = Path(__file__).parent / "results"


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


def main() -> None:
    messages = _messages(orders=20_000)
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
    print(
        table(
            ("step", "events", "seconds", "events/s"),
            [(r["name"], r["events"], r["seconds"], r["events_per_second"]) for r in rows],
        )
    )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"ledger-core-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": "ledger-core",
                "at": stamp,
                "results": rows,
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                },
            },
            indent=2,
        )
    )
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
