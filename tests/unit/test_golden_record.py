"""The cores emit and store exactly what bench/golden.json recorded (see bench/golden.py).

A failure here means a change altered what the matching decides or emits. If that was the
intent, record anew with `python -m bench.golden --write` in a commit of its own that says
why; `python -m bench.golden --dump DIR` writes the outputs to diff against the old ones.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import golden
from bench.accuracy import build_stages, run_stream
from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import decode, encode
from schemas.events import ReasonCode
from schemas.topics import OUTPUT_MAX_MESSAGE_BYTES
from services.domain.policy import Policy
from services.simulator import simulate
from services.simulator.truth import read_truth


def test_cores_emit_and_store_what_the_golden_record_holds() -> None:
    recorded = json.loads(golden.RECORD.read_text())
    assert golden.differences(recorded, golden.compute()) == []


def test_the_anomaly_stream_raises_every_reason_code() -> None:
    recorded = json.loads(golden.RECORD.read_text())
    assert set(recorded["every anomaly"]["reasons_detected"]) == {r.value for r in ReasonCode}


def test_every_output_of_every_core_is_a_valid_event_of_the_contract(tmp_path: Path) -> None:
    """Outputs are built without running the validators (services/domain/outputs.py); this
    checks that they would pass them, for every core, on the stream with every anomaly:
    parsing the encoded output gives the same event back."""
    stream, truth = tmp_path / "stream.jsonl", tmp_path / "truth.jsonl"
    with stream.open("wb") as out, truth.open("wb") as truth_out:
        simulate(golden.EVERY_ANOMALY, out, truth_out)
    stages = build_stages(read_truth(truth), Policy(), golden.ALL_CORES)
    kinds: set[str] = set()

    def check(output: CloudEvent) -> None:
        kinds.add(output.type)
        assert decode(encode(output), max_bytes=OUTPUT_MAX_MESSAGE_BYTES) == output

    run_stream(stream, stages, check)
    assert {ev.type_name(c) for c in OUTPUTS_OF_THE_CORES} <= kinds


OUTPUTS_OF_THE_CORES = (
    ev.BalanceChanged,
    ev.OrderMatched,
    ev.WriteoffApplied,
    ev.MismatchDetected,
    ev.MismatchResolved,
    ev.PaymentApplied,
    ev.PaymentSettled,
    ev.PayoutMatched,
    ev.CreditLimitBreached,
    ev.CreditLimitRestored,
)
