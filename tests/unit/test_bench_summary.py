"""The closing table of `make bench` says, per goal of issue #7, whether the run met it."""

from __future__ import annotations

from typing import Any

from bench.summary import goals


def _score(reason: str, expected: int, precision: float | None, recall: float) -> dict[str, Any]:
    return {"reason": reason, "expected": expected, "precision": precision, "recall": recall}


def _accuracy(cores: list[dict[str, Any]], share: float = 0.999) -> dict[str, Any]:
    sql = [_score(s["reason"], s["expected"], 0.5, 1.0) for s in cores]
    return {
        "o2c": {"scores": cores, "bank_lines": {"lines": 1633, "share": share}},
        "batch_sql": {"scores": sql, "bank_lines": {"lines": 1633, "share": 0.963}},
    }


def _rows(text: str) -> dict[str, list[str]]:
    lines = text.splitlines()
    assert lines[1] == "|---|---|---|---|---|"
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:]]
    assert all(len(row) == 5 for row in cells)
    return {row[0]: row[1:] for row in cells}


def test_every_goal_is_shown_as_not_run_when_its_part_did_not_run() -> None:
    rows = _rows(goals({}))

    assert rows["recall, every reason code"][1:] == ["not run", "", "-"]
    assert rows["ledger throughput, one worker, through the broker"][1] == "not run"
    assert rows["latency p99 at 2,000 events/s"][1] == "not run"
    assert all(row[-1] == "-" for row in rows.values())


def test_one_reason_below_the_precision_goal_fails_it_and_is_named() -> None:
    cores = [_score("OVERPAID", 10, 1.0, 1.0), _score("CHARGEBACK", 50, 0.98, 1.0)]

    rows = _rows(goals({"accuracy": _accuracy(cores)}))

    assert rows["precision, every reason code"][1:] == [
        "lowest 0.9800 (CHARGEBACK) of 2 reasons",
        "batch SQL: 0.5000 for all 2 reasons",
        "**no**",
    ]
    assert rows["recall, every reason code"][1] == "1.0000 for all 2 reasons"
    assert rows["recall, every reason code"][3] == "yes"
    assert rows["bank lines applied correctly without a person"][1:] == [
        "99.9% of 1,633",
        "batch SQL: 96.3%",
        "yes",
    ]


def test_reason_expected_but_never_reported_counts_as_zero_and_fails_recall() -> None:
    cores = [_score("OVERPAID", 10, 1.0, 1.0), _score("UNDERPAID", 3, None, 0.0)]
    cores.append(_score("FEE_MISMATCH", 0, None, 0.0))  # nothing expected: not graded

    rows = _rows(goals({"accuracy": _accuracy(cores)}))

    assert rows["recall, every reason code"][1] == "lowest 0.0000 (UNDERPAID) of 2 reasons"
    assert rows["recall, every reason code"][3] == "**no**"
    assert rows["precision, every reason code"][3] == "**no**"


def test_throughput_and_p99_are_judged_against_their_goals_beside_the_baseline() -> None:
    results = {
        "throughput": {
            "events_per_second": 796,
            "baseline": {"events_per_second": 171_080},
            "memory": {
                "orders": 20_000,
                "worker_rss_mib_at_end": 420,
                "rss_growth_bytes_per_order": 1_900,
                "rocksdb_bytes_per_order": 650,
            },
        },
        "latency": [
            {"offered_rate": 500, "p50_ms": 8.0, "p95_ms": 20.0, "p99_ms": 70.0},
            {"offered_rate": 2000, "p50_ms": 9.0, "p95_ms": 30.0, "p99_ms": 49.9},
        ],
    }

    rows = _rows(goals(results))

    assert rows["ledger throughput, one worker, through the broker"][1:] == [
        "796 events/s",
        "confluent-kafka + orjson: 171,080 events/s",
        "**no**",
    ]
    at_500 = rows["latency p50 / p95 / p99 at 500 events/s offered"]
    assert at_500[0] == "-"  # no goal at this rate, so nothing to meet
    assert at_500[3] == "-"
    assert rows["latency p50 / p95 / p99 at 2,000 events/s offered"][3] == "yes"
    assert rows["worker memory per further order (resident growth)"][1] == "1,900 bytes"
