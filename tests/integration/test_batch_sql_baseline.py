"""The nightly batch SQL baseline (bench/batch_sql.py) runs on a simulated stream and is
scored against the same ground truth as the cores, so `make bench` compares like with like."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bench.batch_sql import baseline
from services.simulator import SimConfig, simulate
from tests.conftest import Services

pytestmark = pytest.mark.integration


def test_batch_sql_reconciles_a_simulated_stream_and_is_scored_per_reason(
    services: Services, tmp_path: Path
) -> None:
    stream, truth = tmp_path / "s.jsonl", tmp_path / "s.truth.jsonl"
    with stream.open("wb") as out, truth.open("wb") as truth_out:
        counters = simulate(SimConfig(orders=1500, days=5, seed=11), out, truth_out)

    result = baseline(services.database_url, stream, truth, schema=f"batch_{uuid.uuid4().hex[:8]}")

    assert result["events"] == counters.events
    scores = {s["reason"]: s for s in result["scores"]}
    assert len(scores) == 15
    # Rules the SQL states exactly as the contract does find what the truth expects.
    for reason in ("CURRENCY_MISMATCH", "DUPLICATE_PAYMENT", "PAYOUT_NOT_IN_BANK", "CHARGEBACK"):
        assert scores[reason]["expected"] > 0, reason
        assert scores[reason]["recall"] == 1.0, (reason, scores[reason])
    lines = result["bank_lines"]
    assert lines["lines"] > 0
    assert 0.5 < lines["share"] <= 1.0
