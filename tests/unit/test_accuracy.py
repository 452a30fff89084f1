"""The accuracy harness scores what stages leave open against the truth, and a plugged
stage replaces the oracle of its role."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bench.accuracy import OraclePayouts, Outputs, build_stages, evaluate
from schemas import events as ev
from schemas.events import ReasonCode
from services.domain.policy import Policy
from services.simulator import SimConfig, simulate
from services.simulator.truth import Truth

R = ReasonCode


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("acc")
    stream, truth = folder / "s.jsonl", folder / "s.truth.jsonl"
    config = SimConfig(orders=600, days=3, seed=4, rates=dict.fromkeys(ReasonCode, 0.03))
    with stream.open("wb") as out, truth.open("wb") as truth_out:
        simulate(config, out, truth_out)
    return stream, truth


class PayoutsThatRaiseTheTruthAndOneMore(OraclePayouts):
    """Settles as the oracle does; on the last day raises every expected PAYOUT_NOT_IN_BANK
    and one on a payout that is fine."""

    name = "payout: test double"
    reasons = frozenset({R.PAYOUT_NOT_IN_BANK})

    def close_day(self, event: ev.DayClosed) -> Outputs:
        if event.data.date != date.fromisoformat(self.truth.summary["last_day"]):
            return ()
        wrong = [(R.PAYOUT_NOT_IN_BANK, ("PO-FINE",))]
        expected = [k for k in self.truth.expected if k[0] is R.PAYOUT_NOT_IN_BANK]
        return [
            self._fact(
                ev.MismatchDetected,
                str(ids[0]),
                ev.MismatchDetectedData(
                    mismatch_id=f"m-{ids[0]}",
                    reason=reason,
                    severity="high",
                    currency="CNY",
                    payout_id=ids[0],
                    detected_at=event.time,
                ),
                event,
            )
            for reason, ids in [*expected, *wrong]
        ]


def _double(truth: Truth, policy: Policy) -> PayoutsThatRaiseTheTruthAndOneMore:
    return PayoutsThatRaiseTheTruthAndOneMore(truth, policy)


def test_reasons_without_a_real_stage_are_not_evaluated(files: tuple[Path, Path]) -> None:
    _text, result = evaluate(*files)
    scores = {s["reason"]: s for s in result["scores"]}
    # FEE_MISMATCH is the ledger's (it compares the fee on payment.settled with the capture's).
    for reason in ("PAYOUT_NOT_IN_BANK", "AMBIGUOUS_BANK_LINE", "UNMATCHED_BANK_LINE"):
        assert not scores[reason]["evaluated"]
        assert scores[reason]["precision"] is None
        assert scores[reason]["expected"] > 0
    assert result["bank_lines"] == {"evaluated": False}


def test_a_plugged_stage_replaces_the_oracle_and_is_scored(files: tuple[Path, Path]) -> None:
    text, result = evaluate(*files, plugged=[_double])
    stages = [s["name"] for s in result["stages"]]
    assert "payout: test double" in stages
    assert "payout: oracle from truth" not in stages
    score = next(s for s in result["scores"] if s["reason"] == "PAYOUT_NOT_IN_BANK")
    n = score["expected"]
    assert (score["open"], score["correct"]) == (n + 1, n)
    assert score["precision"] == n / (n + 1)
    assert score["recall"] == 1.0
    assert ["PAYOUT_NOT_IN_BANK", "PO-FINE"] in result["examples"]["false_positives"]
    assert "PAYOUT_NOT_IN_BANK" in text
    # The ledger still sees every settlement through the plugged stage: still perfect.
    ledger = next(s for s in result["scores"] if s["reason"] == "PAYMENT_NOT_SETTLED")
    assert (ledger["precision"], ledger["recall"]) == (1.0, 1.0)


def test_build_stages_keeps_one_stage_per_role(files: tuple[Path, Path]) -> None:
    from services.simulator.truth import read_truth

    truth = read_truth(files[1])
    roles = [s.role for s in build_stages(truth, Policy(), [_double])]
    assert sorted(roles) == ["ledger", "payout", "suspense"]
