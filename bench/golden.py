"""The golden record: what the matching cores emit and store on fixed streams, as digests.

Every speed change to services/domain/ or schemas/codec.py must leave these digests as
they are (tests/unit/test_golden_record.py recomputes them). Each stream is run in process
through the real cores, as bench/accuracy.py runs them; the digest of a stream's outputs
is sha256 over every output's encoded bytes, in the order they were emitted, each prefixed
by its length. A core's states have two digests, over every state sorted by key: of what
the state holds (`content`: its fields in a canonical JSON, sets sorted, whatever the
stored format) and of its stored bytes (`stored`). Outputs and states are kept apart
because a new stored format changes `stored` and must never change the outputs; `stored`
is recorded only for cores whose stored bytes do not depend on the process (a set's order
follows string hashing, which is salted per process).

    python -m bench.golden            # compare with bench/golden.json
    python -m bench.golden --write    # record anew (a separate, explained commit)
    python -m bench.golden --dump DIR # every output as JSON lines, to diff two versions
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from bench.accuracy import LedgerStage, Stage, build_stages, run_stream
from bench.settlement_stages import CreditStage, PayoutStage, SuspenseStage
from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import decode, encode
from schemas.events import ReasonCode
from services.domain import credit, invoice_references, ledger, native, payouts, suspense
from services.domain.matching import apply, may_change_with_time
from services.domain.policy import Policy
from services.samples.demo import demo_events
from services.simulator import SimConfig, simulate
from services.simulator.truth import read_truth

RECORD = Path(__file__).with_name("golden.json")

# Every reason code injected often, and the arrival-order anomalies (duplicates, upstream
# resends with new ids, late deliveries up to two hours) far more often than by default.
EVERY_ANOMALY = SimConfig(
    orders=1_000,
    days=4,
    seed=3,
    rates=dict.fromkeys(ReasonCode, 0.05),
    duplicate_rate=0.05,
    resend_rate=0.05,
    late_rate=0.2,
    max_delay_minutes=120,
)
SIMULATED: dict[str, SimConfig] = {
    "accuracy seed 7": SimConfig(orders=1_000, days=4, seed=7),
    "accuracy seed 11": SimConfig(orders=600, days=3, seed=11),
    "every anomaly": EVERY_ANOMALY,
}
THROUGHPUT_ORDERS = 1_000  # the ledger bench's stream (services/samples/demo.py)


@dataclass
class Digest:
    """sha256 over length-prefixed parts, and how many there were."""

    parts: int = 0
    _hash: Any = field(default_factory=hashlib.sha256)

    def add(self, *chunks: bytes) -> None:
        self.parts += 1
        for chunk in chunks:
            self._hash.update(len(chunk).to_bytes(4, "big"))
            self._hash.update(chunk)

    def record(self) -> dict[str, Any]:
        return {"count": self.parts, "sha256": self._hash.hexdigest()}


class Outputs:
    """Digests every output as it is emitted; optionally keeps the bytes."""

    def __init__(self, keep: bool = False) -> None:
        self.digest = Digest()
        self.reasons: Counter[str] = Counter()
        self.kept: list[bytes] | None = [] if keep else None

    def __call__(self, output: CloudEvent) -> None:
        raw = encode(output)
        self.digest.add(raw)
        if self.kept is not None:
            self.kept.append(raw)
        if isinstance(output, ev.MismatchDetected):
            self.reasons[output.data.reason.value] += 1


def canonical(value: Any) -> Any:
    """A state's content as plain JSON values, independent of how it is stored."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted((canonical(v) for v in value), key=orjson.dumps)
    if isinstance(value, tuple | list):
        return [canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)  # "10.0" and "10.00" are different contents: they print apart
    if isinstance(value, date):  # and datetime
        return value.isoformat()
    return value


# Cores whose stored bytes are the same in every process (see the module docstring): all,
# since sets are stored sorted.
STORED_DETERMINISTIC = frozenset({"ledger", "payout", "suspense", "invoice_references", "credit"})


def _states(core: str, states: Iterable[tuple[str, Any]], dump: Any) -> dict[str, Any]:
    content, stored = Digest(), Digest()
    for key, state in sorted(states, key=lambda kv: kv[0]):
        content.add(key.encode(), orjson.dumps(canonical(state), option=orjson.OPT_SORT_KEYS))
        stored.add(key.encode(), dump(key, state))
    record = {"content": content.record()}
    if core in STORED_DETERMINISTIC:
        record["stored"] = stored.record()
    return record


def stored_states(stages: list[Stage]) -> dict[str, dict[str, Any]]:
    """The digests of every state each core holds at the end of a run, by core."""
    found: dict[str, dict[str, Any]] = {}
    for stage in stages:
        if isinstance(stage, LedgerStage):
            found["ledger"] = _states(
                "ledger",
                stage.ledgers.items(),
                lambda k, s, waiting=stage.waiting: ledger.dump_state(s, time_driven=k in waiting),
            )
        elif isinstance(stage, PayoutStage):
            found["payout"] = _states(
                "payout", stage.states.items(), lambda _, s: payouts.dump_state(s)
            )
        elif isinstance(stage, SuspenseStage):
            found["suspense"] = _states(
                "suspense", stage.customers.items(), lambda _, s: suspense.dump_state(s)
            )
            found["invoice_references"] = _states(
                "invoice_references",
                stage.invoices.items(),
                lambda _, s: invoice_references.dump_state(s),
            )
        elif isinstance(stage, CreditStage):
            found["credit"] = _states(
                "credit", stage.states.items(), lambda _, s: credit.dump_state(s)
            )
    return found


ALL_CORES = (PayoutStage, SuspenseStage, CreditStage)


def run_simulated(config: SimConfig, keep: bool = False) -> tuple[dict[str, Any], Outputs]:
    """All the cores over one simulated stream."""
    with tempfile.TemporaryDirectory() as tmp:
        stream, truth_path = Path(tmp, "stream.jsonl"), Path(tmp, "truth.jsonl")
        with stream.open("wb") as out, truth_path.open("wb") as truth_out:
            simulate(config, out, truth_out)
        stages = build_stages(read_truth(truth_path), Policy(), ALL_CORES)
        outputs = Outputs(keep)
        run = run_stream(stream, stages, outputs)
    return {
        "events": run.events,
        "outputs": outputs.digest.record(),
        "reasons_detected": dict(sorted(outputs.reasons.items())),
        "states": stored_states(stages),
    }, outputs


def run_throughput(orders: int, keep: bool = False) -> tuple[dict[str, Any], Outputs]:
    """The ledger alone over the bench's stream, each ledger stored and loaded between
    events as the worker does, so that the round trip is part of the record."""
    policy = Policy()
    stored: dict[str, bytes] = {}
    final: dict[str, ledger.Ledger] = {}
    outputs = Outputs(keep)
    events = 0
    for document in demo_events(orders=orders):
        events += 1
        event = decode(orjson.dumps(document))
        key = event.partition_key()
        if key is None:
            continue  # as the bench's ledger step: nothing keyed, nothing for a ledger
        raw = stored.get(key)
        state = ledger.load_state(raw) if raw is not None else ledger.new_ledger(key)
        updated, emitted = apply(state, event, policy, None)
        for output in emitted:
            outputs(output)
        if updated is not state:
            time_driven = may_change_with_time(updated, policy)
            stored[key] = ledger.dump_state(updated, time_driven=time_driven)
            final[key] = updated
    return {
        "events": events,
        "outputs": outputs.digest.record(),
        "reasons_detected": dict(sorted(outputs.reasons.items())),
        "states": {"ledger": _states("ledger", final.items(), lambda k, _: stored[k])},
    }, outputs


def runs(keep: bool = False) -> Iterator[tuple[str, dict[str, Any], Outputs]]:
    for name, config in SIMULATED.items():
        yield (name, *run_simulated(config, keep))
    yield ("ledger throughput", *run_throughput(THROUGHPUT_ORDERS, keep))


def compute() -> dict[str, Any]:
    return {name: record for name, record, _ in runs()}


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Human-readable differences between two records, outputs first."""
    found = []
    for name in sorted(set(expected) | set(actual)):
        want, got = expected.get(name), actual.get(name)
        if want is None or got is None:
            found.append(f"{name}: only in {'the run' if want is None else 'the record'}")
            continue
        for part in ("events", "outputs", "reasons_detected"):
            if want[part] != got[part]:
                found.append(f"{name}: {part} {got[part]} != recorded {want[part]}")
        for core in sorted(set(want["states"]) | set(got["states"])):
            mine, recorded = got["states"].get(core, {}), want["states"].get(core, {})
            for part in sorted(set(mine) | set(recorded)):
                if mine.get(part) != recorded.get(part):
                    found.append(f"{name}: {core} states, {part}: {mine.get(part)} != recorded")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.golden", description=__doc__)
    parser.add_argument("--write", action="store_true", help="record the digests anew")
    parser.add_argument("--dump", type=Path, metavar="DIR", help="write every output too")
    args = parser.parse_args(argv)
    print(native.summary())
    record: dict[str, Any] = {}
    for name, result, outputs in runs(keep=args.dump is not None):
        record[name] = result
        if args.dump is not None and outputs.kept is not None:
            args.dump.mkdir(parents=True, exist_ok=True)
            path = args.dump / (name.replace(" ", "-") + ".jsonl")
            path.write_bytes(b"".join(raw + b"\n" for raw in outputs.kept))
    if args.write:
        RECORD.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        print(f"written {RECORD}")
        return 0
    found = differences(json.loads(RECORD.read_text()), record)
    print("\n".join(found) if found else "identical to the golden record")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
