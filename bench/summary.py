"""The closing table of `make bench`: each measure beside its goal and its same-run baseline,
in markdown so that it can be pasted into an issue or a pull request as it is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

NOT_RUN = "not run"
# The goals of issue #7.
RECALL_GOAL = 1.0
PRECISION_GOAL = 0.99
BANK_LINES_GOAL = 0.95
THROUGHPUT_GOAL = 20_000
P99_GOAL_MS = 50.0
P99_GOAL_RATE = 2_000

Row = tuple[str, str, str, str, str]
BANK_LINES = "bank lines applied correctly without a person"


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _met(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "**no**")


def _graded(scores: list[dict[str, Any]], field: str) -> list[tuple[float, str]]:
    """(`field`, reason) of every evaluated reason with something expected. A reason
    expected but never reported has no precision: it counts as 0."""
    return [
        (float(s[field] or 0), s["reason"])
        for s in scores
        if s.get("evaluated", True) and s["expected"]
    ]


def _worst(values: list[tuple[float, str]]) -> str:
    """The lowest value, and which reason it is."""
    if not values:
        return NOT_RUN
    value, reason = min(values)
    if value == max(v for v, _ in values):
        return f"{value:.4f} for all {len(values)} reasons"
    return f"lowest {value:.4f} ({reason}) of {len(values)} reasons"


def _accuracy_rows(accuracy: dict[str, Any] | None) -> list[Row]:
    measures = (
        ("recall", f"{RECALL_GOAL}", RECALL_GOAL),
        ("precision", f"≥ {PRECISION_GOAL}", PRECISION_GOAL),
    )
    if accuracy is None or "batch_sql" not in accuracy:  # not run, or before the SQL baseline
        return [
            *(
                (f"{field}, every reason code", label, NOT_RUN, "", "-")
                for field, label, _ in measures
            ),
            (BANK_LINES, f"≥ {BANK_LINES_GOAL:.0%}", NOT_RUN, "", "-"),
        ]
    cores, sql = accuracy["o2c"], accuracy["batch_sql"]
    rows: list[Row] = []
    for field, label, goal in measures:
        mine = _graded(cores["scores"], field)
        rows.append(
            (
                f"{field}, every reason code",
                label,
                _worst(mine),
                "batch SQL: " + _worst(_graded(sql["scores"], field)),
                _met(min(v for v, _ in mine) >= goal if mine else None),
            )
        )
    lines, theirs = cores["bank_lines"], sql["bank_lines"]
    rows.append(
        (
            BANK_LINES,
            f"≥ {BANK_LINES_GOAL:.0%}",
            f"{lines['share']:.1%} of {lines['lines']:,}",
            f"batch SQL: {theirs['share']:.1%}",
            _met(lines["share"] >= BANK_LINES_GOAL),
        )
    )
    return rows


def _speed_rows(results: dict[str, Any]) -> list[Row]:
    core = {r["name"]: r for r in results.get("core", [])}
    rows: list[Row] = []
    ledger, parse = (
        core.get("decode + ledger apply + encode outputs"),
        core.get("baseline: orjson parse only"),
    )
    if ledger and parse:
        rows.append(
            (
                "ledger core in process (decode + apply + encode)",
                "-",
                f"{ledger['events_per_second']:,} events/s",
                f"orjson parse only: {parse['events_per_second']:,} events/s",
                "-",
            )
        )
    t = results.get("throughput")
    rows.append(
        (
            "ledger throughput, one worker, through the broker",
            f"≥ {THROUGHPUT_GOAL:,} events/s",
            f"{t['events_per_second']:,} events/s" if t else NOT_RUN,
            f"confluent-kafka + orjson: {t['baseline']['events_per_second']:,} events/s"
            if t
            else "",
            _met(t["events_per_second"] >= THROUGHPUT_GOAL) if t else "-",
        )
    )
    for r in results.get("latency", []):
        rate = r["offered_rate"]
        if "p99_ms" not in r:
            rows.append((f"latency at {rate:,} events/s", "-", "too few outputs", "", "-"))
            continue
        goal = rate == P99_GOAL_RATE
        rows.append(
            (
                f"latency p50 / p95 / p99 at {rate:,} events/s offered",
                f"p99 ≤ {P99_GOAL_MS:.0f} ms" if goal else "-",
                f"{r['p50_ms']:,} / {r['p95_ms']:,} / {r['p99_ms']:,} ms",
                "",
                _met(r["p99_ms"] <= P99_GOAL_MS) if goal else "-",
            )
        )
    if not any(r["offered_rate"] == P99_GOAL_RATE for r in results.get("latency", [])):
        rows.append(
            (
                f"latency p99 at {P99_GOAL_RATE:,} events/s",
                f"≤ {P99_GOAL_MS:.0f} ms",
                NOT_RUN,
                "",
                "-",
            )
        )
    return rows


def _read_side_rows(projections: dict[str, Any] | None) -> list[Row]:
    if projections is None:
        return [("projection throughput", "-", NOT_RUN, "", "-")]
    p = projections["projection"]
    rows: list[Row] = [
        (
            "projection throughput, one process",
            "-",
            f"{p['events_per_second']:,} events/s ({p['messages']:,} events)",
            "",
            "-",
        )
    ]
    b = projections.get("rebuild")
    if b:
        rows.append(
            (
                "rebuild of the read models from offset 0",
                "-",
                f"{b['seconds']:,} s for {b['messages']:,} events ({b['events_per_second']:,}/s)",
                f"1,000,000 events at that rate: {b['extrapolated_seconds_for_1m']:,} s",
                "-",
            )
        )
    return rows


def _memory_rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    stored = results.get("stored_ledger")
    if stored and stored["bytes_per_order"] is not None:
        still_open = stored["bytes_per_open_order"]
        rows.append(
            (
                "stored ledger (serialized), bytes per order",
                "-",
                f"{stored['bytes_per_order']:,}",
                f"open orders: {still_open:,}" if still_open is not None else "",
                "-",
            )
        )
    memory = (results.get("throughput") or {}).get("memory")
    if memory:
        rows.append(
            (
                "worker memory per further order (resident growth)",
                "-",
                f"{memory['rss_growth_bytes_per_order']:,} bytes",
                f"{memory['worker_rss_mib_at_end']:,} MiB after {memory['orders']:,} orders",
                "-",
            )
        )
        rows.append(
            (
                "worker RocksDB files, bytes per order",
                "-",
                f"{memory['rocksdb_bytes_per_order']:,}",
                "",
                "-",
            )
        )
    return rows


def goals(results: dict[str, Any]) -> str:
    """Markdown: measure | goal | measured | same-run baseline | met."""
    rows = [
        *_accuracy_rows(results.get("accuracy")),
        *_speed_rows(results),
        *_read_side_rows(results.get("projections")),
        *_memory_rows(results),
    ]
    return markdown(("measure", "goal", "measured", "same-run baseline", "met"), rows)


def main(argv: list[str] | None = None) -> None:
    """`python -m bench.summary bench/results/bench-….json`: the table of a saved run."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m bench.summary", description=main.__doc__)
    parser.add_argument("results", type=Path, help="a bench-*.json written by `make bench`")
    args = parser.parse_args(argv)
    print(goals(json.loads(args.results.read_text())["results"]))


if __name__ == "__main__":
    main()
