"""The cores emit and store exactly what bench/golden.json recorded (see bench/golden.py).

A failure here means a change altered what the matching decides or emits. If that was the
intent, record anew with `python -m bench.golden --write` in a commit of its own that says
why; `python -m bench.golden --dump DIR` writes the outputs to diff against the old ones.
"""

from __future__ import annotations

import json

from bench import golden
from schemas.events import ReasonCode


def test_cores_emit_and_store_what_the_golden_record_holds() -> None:
    recorded = json.loads(golden.RECORD.read_text())
    assert golden.differences(recorded, golden.compute()) == []


def test_the_anomaly_stream_raises_every_reason_code() -> None:
    recorded = json.loads(golden.RECORD.read_text())
    assert set(recorded["every anomaly"]["reasons_detected"]) == {r.value for r in ReasonCode}
