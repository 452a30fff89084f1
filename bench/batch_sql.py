"""Baseline: the nightly batch reconciliation in SQL, on the same simulated events.

The stream is loaded into PostgreSQL (one JSON document a row, COPY) and reconciled with
set-based SQL (bench/batch_recon.sql) as of the last closed day; its findings and bank-line
applications are scored against the same ground truth as o2c-matcher's cores.

    python -m bench.batch_sql --stream s.jsonl [--truth s.truth.jsonl]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import accuracy
from schemas.base import CloudEvent
from schemas.events import DayClosed, ReasonCode
from services.cli.simulate import truth_path
from services.simulator.truth import mismatch_key, read_truth

SCRIPT = Path(__file__).with_name("batch_recon.sql")
SCHEMA = "o2c_batch"
CHUNK = 1 << 20


class _Decides:
    """Stands in for the stages the scoring asks about: the SQL decides every reason and
    places bank lines, as the payout and suspense processors do."""

    def __init__(self, role: str) -> None:
        self.name = f"batch SQL ({role})"
        self.role = role
        self.reasons = frozenset(ReasonCode)
        self.topics: frozenset[str] = frozenset()

    def handle(self, event: CloudEvent) -> accuracy.Outputs:
        return ()

    def close_day(self, event: DayClosed) -> accuracy.Outputs:
        return ()


def statements(script: str) -> list[str]:
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def load(conn: psycopg.Connection[Any], stream: Path, schema: str = SCHEMA) -> int:
    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    conn.execute(f"CREATE SCHEMA {schema}")
    conn.execute(f"SET search_path TO {schema}")
    conn.execute("CREATE TABLE raw (doc jsonb NOT NULL)")
    rows = 0
    with conn.cursor().copy("COPY raw (doc) FROM STDIN") as copy, stream.open("rb") as handle:
        while chunk := handle.readlines(CHUNK):
            lines = [line for line in chunk if line.strip()]
            rows += len(lines)
            # COPY's text format: only the backslash needs escaping in JSON lines.
            copy.write(b"".join(lines).replace(b"\\", b"\\\\"))
    return rows


def reconcile(conn: psycopg.Connection[Any], schema: str = SCHEMA) -> accuracy.Run:
    conn.execute(f"SET search_path TO {schema}")
    for statement in statements(SCRIPT.read_text()):
        conn.execute(statement)
    run = accuracy.Run()
    for n, (reason, order_id, payment_id, payout_id, line_id) in enumerate(
        conn.execute("SELECT reason, order_id, payment_id, payout_id, line_id FROM finding")
    ):
        ids = {"order_id": order_id, "payment_id": payment_id}
        ids |= {"payout_id": payout_id, "line_id": line_id}
        run.open[str(n)] = mismatch_key(reason, ids)
        run.detected[reason] += 1
    for line_id, order_id, amount in conn.execute("SELECT line_id, order_id, amount FROM applied"):
        run.applied[line_id].add((order_id, format(amount, "f")))
    for line_id, payout_id in conn.execute("SELECT line_id, payout_id FROM payout_matched"):
        run.payout_lines[line_id] = payout_id
    return run


def baseline(
    database_url: str, stream: Path, truth_file: Path | None = None, schema: str = SCHEMA
) -> dict[str, Any]:
    truth = read_truth(truth_file or Path(truth_path(str(stream))))
    with psycopg.connect(database_url, autocommit=True) as conn:
        started = time.perf_counter()
        events = load(conn, stream, schema)
        loaded = time.perf_counter()
        run = reconcile(conn, schema)
        done = time.perf_counter()
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    stages: list[accuracy.Stage] = [_Decides("payout"), _Decides("suspense")]
    scores = accuracy.score(truth, run, stages)
    return {
        "events": events,
        "load_seconds": round(loaded - started, 2),
        "reconcile_seconds": round(done - loaded, 2),
        "scores": [
            {
                "reason": s.reason,
                "expected": s.expected,
                "found": s.found,
                "true_positives": s.true_positives,
                "precision": s.precision,
                "recall": s.recall,
            }
            for s in scores
        ],
        "bank_lines": accuracy.bank_line_accuracy(truth, run, stages),
    }


def main(argv: list[str] | None = None) -> None:
    from services.cli.output import table
    from services.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m bench.batch_sql", description=__doc__)
    parser.add_argument("--stream", type=Path, required=True)
    parser.add_argument("--truth", type=Path)
    args = parser.parse_args(argv)
    r = baseline(get_settings().database_url, args.stream, args.truth)
    print(
        f"{r['events']} events loaded in {r['load_seconds']} s, "
        f"reconciled in {r['reconcile_seconds']} s"
    )
    print(
        table(
            ("reason", "expected", "found", "correct", "precision", "recall"),
            [
                (
                    s["reason"],
                    s["expected"],
                    s["found"],
                    s["true_positives"],
                    accuracy._fmt(s["precision"]),
                    accuracy._fmt(s["recall"]),
                )
                for s in r["scores"]
            ],
        )
    )
    b = r["bank_lines"]
    print(
        f"bank lines applied correctly without a person: {b['correct']}/{b['lines']} "
        f"({b['share']:.1%})"
    )


if __name__ == "__main__":
    main()
