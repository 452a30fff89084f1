"""Accuracy against the simulator's ground truth: precision and recall per reason code.

A simulated stream is run in process through pure cores, as the workers would run it:
each event goes to the stages that consume its topic, keyed by its partition key; so does
every output (`payment.settled` and `payment.applied` reach the ledger, `balance.changed`
whatever consumes o2c.matches); every `day.closed` reaches every stage and every ledger. At the end,
the mismatches still open are compared with the truth's expected mismatches by reason and
key (services/simulator/truth.py, KEY_FIELDS).

Stages are pluggable. The ledger (services/domain/matching.apply) is real. The payout and
suspense processors of issue #5 are stood in for by oracles that apply every bank line as
the truth says, and raise nothing; a reason code that no real stage decides is reported as
"not evaluated", never as zero. A real core replaces an oracle by registering a stage with
the same `role` (see `Stage`), or with `--stage module:factory` on the command line.

    python -m bench.accuracy --orders 20000 --days 20 --seed 7
    python -m bench.accuracy --stream s.jsonl --truth s.truth.jsonl
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import decode
from schemas.events import ReasonCode
from schemas.topics import INVOICES, MATCHES, ORDERS, PAYMENTS, REFUNDS, topic_for
from services.cli.output import table
from services.domain.conditions import SEVERITY
from services.domain.ledger import Ledger, new_ledger
from services.domain.matching import apply, may_change_with_time
from services.domain.policy import Policy
from services.domain.references import ReferencePatterns
from services.simulator import SimConfig, simulate
from services.simulator.truth import MismatchKey, Truth, mismatch_key, read_truth

RESULTS = Path(__file__).parent / "results"

Outputs = Sequence[CloudEvent]


class Stage(Protocol):
    """A pure core under test. `role` names the processor it is (ledger, payout, suspense);
    `reasons` the reason codes it decides (empty for an oracle); `topics` what it consumes."""

    name: str
    role: str
    reasons: frozenset[ReasonCode]
    topics: frozenset[str]

    def handle(self, event: CloudEvent) -> Outputs: ...

    def close_day(self, event: ev.DayClosed) -> Outputs: ...


StageFactory = Callable[[Truth, Policy], Stage]

# The ledger decides exactly the reasons it grades (services/domain/conditions.py).
LEDGER_REASONS = frozenset(SEVERITY)
LEDGER_FACTS = (ev.PaymentSettled, ev.PaymentApplied)


class LedgerStage:
    """The ledger processor's core, one Ledger per key, as services/worker/ledger_processor
    keys them: order id, else (payments naming no order) the order their reference names
    (a reversal follows its capture there), else the payment id."""

    name = "ledger (services/domain/matching.apply)"
    role = "ledger"
    reasons = LEDGER_REASONS
    topics = frozenset({ORDERS.name, INVOICES.name, PAYMENTS.name, REFUNDS.name, MATCHES.name})

    def __init__(self, _truth: Truth, policy: Policy) -> None:
        self.policy = policy
        self.references = ReferencePatterns()
        self.ledgers: dict[str, Ledger] = {}
        self.waiting: set[str] = set()
        self.forwarded: dict[str, str] = {}  # payment id -> order its reference named
        self.today: date | None = None

    def handle(self, event: CloudEvent) -> Outputs:
        if topic_for(event) is MATCHES and not isinstance(event, LEDGER_FACTS):
            return ()
        key = self._key(event)
        ledger = self.ledgers.get(key) or new_ledger(key)
        updated, outputs = apply(ledger, event, self.policy, self.today)
        self._keep(key, updated)
        return outputs

    def _keep(self, key: str, ledger: Ledger) -> None:
        # As the worker does: a day.closed re-assesses only ledgers a later day may change.
        self.ledgers[key] = ledger
        if may_change_with_time(ledger, self.policy):
            self.waiting.add(key)
        else:
            self.waiting.discard(key)

    def _key(self, event: CloudEvent) -> str:
        if isinstance(event, ev.PaymentCaptured) and not event.data.order_id:
            named = self.references.order_id(event.data.reference)
            if named is not None:
                self.forwarded[event.data.payment_id] = named
                return named
        if isinstance(event, ev.PaymentReversed) and not event.data.order_id:
            named = self.forwarded.get(event.data.payment_id)
            if named is not None:
                return named
        key = event.partition_key()
        assert key is not None, f"{event.type} {event.id} has no partition key"
        return key

    def close_day(self, event: ev.DayClosed) -> Outputs:
        outputs: list[CloudEvent] = []
        for key in sorted(self.waiting):
            updated, out = apply(self.ledgers[key], event, self.policy, self.today)
            self._keep(key, updated)
            outputs.extend(out)
        day = event.data.date
        self.today = day if self.today is None else max(self.today, day)
        return outputs


class _Oracle:
    """Emits what a perfect settlement processor would, from the truth; decides nothing."""

    reasons: frozenset[ReasonCode] = frozenset()

    def __init__(self, truth: Truth, _policy: Policy) -> None:
        self.truth = truth
        self.seen_lines: set[str] = set()

    def close_day(self, _event: ev.DayClosed) -> Outputs:
        return ()

    def _fact(self, cls: type[CloudEvent], kind: str, data: Any, cause: CloudEvent) -> CloudEvent:
        return cls(
            specversion="1.0",
            id=f"oracle/{cause.id}/{kind}",
            source="accuracy-oracle",
            type=ev.type_name(cls),
            time=cause.time,
            causationid=cause.id,
            data=data,
        )


class OraclePayouts(_Oracle):
    name = "payout: oracle from truth"
    role = "payout"
    topics = frozenset({"o2c.settlements", "o2c.bank-lines"})

    def __init__(self, truth: Truth, policy: Policy) -> None:
        super().__init__(truth, policy)
        self.payouts: dict[str, ev.PayoutReported] = {}
        self.waiting: dict[str, ev.BankLineBooked] = {}  # matched lines before their payout

    def handle(self, event: CloudEvent) -> Outputs:
        if isinstance(event, ev.PayoutReported):
            first = event.data.payout_id not in self.payouts
            self.payouts.setdefault(event.data.payout_id, event)
            line = self.waiting.pop(event.data.payout_id, None)
            return self._settle(event, line) if first and line is not None else ()
        if not isinstance(event, ev.BankLineBooked) or event.data.line_id in self.seen_lines:
            return ()
        expected = self.truth.bank_lines.get(event.data.line_id, {})
        if expected.get("expect") != "payout" or not expected.get("matched"):
            return ()
        self.seen_lines.add(event.data.line_id)
        payout = self.payouts.get(expected["payout_id"])
        if payout is None:
            self.waiting[expected["payout_id"]] = event
            return ()
        return self._settle(payout, event)

    def _settle(self, payout: ev.PayoutReported, line: ev.BankLineBooked) -> Outputs:
        return [
            self._fact(
                ev.PaymentSettled,
                f"{payout.data.payout_id}/{item.payment_id}",
                ev.PaymentSettledData(
                    payment_id=item.payment_id,
                    order_id=item.order_id,
                    payout_id=payout.data.payout_id,
                    line_id=line.data.line_id,
                    amount=item.gross,
                    currency=payout.data.currency,
                    fee=item.fee,
                ),
                line,
            )
            for item in payout.data.items
            if item.kind == "charge" and item.order_id
        ]


class OracleSuspense(_Oracle):
    name = "suspense: oracle from truth"
    role = "suspense"
    topics = frozenset({"o2c.bank-lines"})

    def handle(self, event: CloudEvent) -> Outputs:
        if not isinstance(event, ev.BankLineBooked) or event.data.line_id in self.seen_lines:
            return ()
        expected = self.truth.bank_lines.get(event.data.line_id, {})
        if expected.get("expect") != "orders":
            return ()
        self.seen_lines.add(event.data.line_id)
        method = expected["method"]
        return [
            self._fact(
                ev.PaymentApplied,
                application["order_id"],
                ev.PaymentAppliedData(
                    line_id=event.data.line_id,
                    order_id=application["order_id"],
                    amount=application["amount"],
                    currency=event.data.currency,
                    method=method,
                    confidence="1",
                ),
                event,
            )
            for application in expected["applications"]
        ]


DEFAULT_STAGES: tuple[StageFactory, ...] = (LedgerStage, OraclePayouts, OracleSuspense)


def build_stages(truth: Truth, policy: Policy, plugged: Iterable[StageFactory] = ()) -> list[Stage]:
    """The default stages, each oracle replaced by a plugged stage of the same role."""
    extra = [factory(truth, policy) for factory in plugged]
    roles = {s.role for s in extra}
    base = [factory(truth, policy) for factory in DEFAULT_STAGES]
    return [s for s in base if s.role not in roles] + extra


@dataclass
class Run:
    """The outputs of a run that the scoring needs."""

    open: dict[str, MismatchKey] = field(default_factory=dict)  # mismatch_id -> key
    detected: Counter[str] = field(default_factory=Counter)
    resolved: int = 0
    applied: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    payout_lines: dict[str, str] = field(default_factory=dict)  # line_id -> payout_id
    events: int = 0
    invalid: int = 0
    outputs: int = 0
    seconds: float = 0.0


def run_stream(
    stream: str | Path, stages: list[Stage], observe: Callable[[CloudEvent], None] | None = None
) -> Run:
    """Every event of `stream` through `stages`; `observe` sees every output, in order."""
    result = Run()
    by_topic: dict[str, list[Stage]] = defaultdict(list)
    for stage in stages:
        for topic in stage.topics:
            by_topic[topic].append(stage)
    started = time.perf_counter()

    def feed(outputs: Outputs, source: Stage) -> None:
        """Record each output and deliver it, like any event, to the stages consuming its
        topic: settlements and applications reach the ledger, balances a suspense core."""
        pending = deque((output, source) for output in outputs)
        while pending:
            output, origin = pending.popleft()
            result.outputs += 1
            if observe is not None:
                observe(output)
            _record(result, output, origin)
            for stage in by_topic.get(topic_for(output).name, ()):
                if stage is not origin:
                    pending.extend((o, stage) for o in stage.handle(output))

    with Path(stream).open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            result.events += 1
            event = decode(line)
            if isinstance(event, ev.DayClosed):
                for stage in stages:
                    feed(stage.close_day(event), stage)
                continue
            for stage in by_topic.get(topic_for(event).name, ()):
                feed(stage.handle(event), stage)
    result.seconds = time.perf_counter() - started
    return result


def _record(result: Run, output: CloudEvent, source: Stage) -> None:
    if isinstance(output, ev.MismatchDetected):
        d = output.data
        result.open[d.mismatch_id] = mismatch_key(d.reason, d.model_dump())
        result.detected[d.reason.value] += 1
    elif isinstance(output, ev.MismatchResolved):
        result.open.pop(output.data.mismatch_id, None)
        result.resolved += 1
    elif isinstance(output, ev.PaymentApplied) and source.reasons and output.data.line_id:
        result.applied[output.data.line_id].add(
            (output.data.order_id, format(output.data.amount, "f"))
        )
    elif isinstance(output, ev.PayoutMatched) and source.reasons:
        result.payout_lines[output.data.line_id] = output.data.payout_id


@dataclass(frozen=True)
class Score:
    reason: str
    evaluated: bool
    expected: int
    found: int
    true_positives: int

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.found if self.found else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.expected if self.expected else None


def score(truth: Truth, run: Run, stages: list[Stage]) -> list[Score]:
    decided = frozenset().union(*(s.reasons for s in stages))
    found = set(run.open.values())
    scores = []
    for reason in sorted(ReasonCode, key=lambda r: r.value):
        expected = {k for k in truth.expected if k[0] is reason}
        mine = {k for k in found if k[0] is reason}
        scores.append(
            Score(reason.value, reason in decided, len(expected), len(mine), len(expected & mine))
        )
    return scores


def bank_line_accuracy(truth: Truth, run: Run, stages: list[Stage]) -> dict[str, Any]:
    """Share of bank lines applied as the truth says without a person, when a real payout
    or suspense stage runs; else not evaluated."""
    real = {s.role for s in stages if s.reasons} & {"payout", "suspense"}
    if not real:
        return {"evaluated": False}
    correct = total = 0
    for line_id, expected in truth.bank_lines.items():
        kind = expected["expect"]
        if kind == "payout" and "payout" in real:
            total += 1
            matched = run.payout_lines.get(line_id) == expected["payout_id"]
            correct += matched == bool(expected["matched"])
        elif kind == "orders" and "suspense" in real:
            total += 1
            wanted = {(a["order_id"], a["amount"]) for a in expected["applications"]}
            correct += run.applied.get(line_id, set()) == wanted
    return {"evaluated": True, "lines": total, "correct": correct, "share": correct / total}


def _missed(truth: Truth, run: Run, stages: list[Stage], limit: int = 10) -> dict[str, Any]:
    """A few false negatives and positives of the evaluated reasons, to start looking."""
    decided = frozenset().union(*(s.reasons for s in stages))
    found = set(run.open.values())
    false_negatives = [k for k in truth.expected if k not in found and k[0] in decided]
    false_positives = [k for k in found if k not in truth.expected]

    def show(keys: list[MismatchKey]) -> list[list[Any]]:
        return [[k[0].value, *k[1]] for k in sorted(keys, key=str)[:limit]]

    return {
        "false_negatives": show(false_negatives),
        "false_positives": show(false_positives),
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def report(truth: Truth, run: Run, stages: list[Stage]) -> tuple[str, dict[str, Any]]:
    scores = score(truth, run, stages)
    rows: list[tuple[object, ...]] = []
    for s in scores:
        if not s.evaluated:
            rows.append((s.reason, s.expected, "-", "-", "not evaluated", ""))
            continue
        rows.append(
            (s.reason, s.expected, s.found, s.true_positives, _fmt(s.precision), _fmt(s.recall))
        )
    text = table(("reason", "expected", "open", "correct", "precision", "recall"), rows)
    lines = bank_line_accuracy(truth, run, stages)
    data = {
        "stages": [{"name": s.name, "role": s.role, "reasons": sorted(s.reasons)} for s in stages],
        "stream_events": run.events,
        "outputs": run.outputs,
        "seconds": round(run.seconds, 3),
        "events_per_second": round(run.events / run.seconds) if run.seconds else None,
        "scores": [
            {
                "reason": s.reason,
                "evaluated": s.evaluated,
                "expected": s.expected,
                "open": s.found if s.evaluated else None,
                "correct": s.true_positives if s.evaluated else None,
                "precision": s.precision if s.evaluated else None,
                "recall": s.recall if s.evaluated else None,
            }
            for s in scores
        ],
        "bank_lines": lines,
        "examples": _missed(truth, run, stages),
        "truth": {k: truth.summary[k] for k in ("first_day", "last_day", "events", "orders")},
    }
    return text, data


def evaluate(
    stream: str | Path, truth_path: str | Path, plugged: Iterable[StageFactory] = ()
) -> tuple[str, dict[str, Any]]:
    truth = read_truth(truth_path)
    stages = build_stages(truth, Policy(), plugged)
    return report(truth, run_stream(stream, stages), stages)


def load_factory(spec: str) -> StageFactory:
    """`package.module:name` of a Stage factory taking (truth, policy)."""
    module, _, name = spec.partition(":")
    factory: StageFactory = getattr(importlib.import_module(module), name)
    return factory


def accuracy(
    orders: int,
    days: int,
    seed: int,
    stream: str | None = None,
    truth: str | None = None,
    stages: Sequence[str] = (),
) -> dict[str, Any]:
    """Simulate (unless a stream and its truth are given), evaluate, print, return."""
    plugged = [load_factory(s) for s in stages]
    with tempfile.TemporaryDirectory() as tmp:
        generated = None
        if stream is None:
            stream, truth = f"{tmp}/stream.jsonl", f"{tmp}/truth.jsonl"
            started = time.perf_counter()
            config = SimConfig(orders=orders, days=days, seed=seed)
            with open(stream, "wb") as out, open(truth, "wb") as truth_out:
                counters = simulate(config, out, truth_out)
            seconds = time.perf_counter() - started
            generated = {
                "orders": orders,
                "days": days,
                "seed": seed,
                "events": counters.events,
                "seconds": round(seconds, 3),
                "events_per_second": round(counters.events / seconds),
            }
            print(
                f"simulated {counters.events} events in {seconds:.1f} s "
                f"({counters.events / seconds:,.0f} events/s)",
                file=sys.stderr,
            )
        if truth is None:
            raise ValueError("--truth is required with --stream")
        text, data = evaluate(stream, truth, plugged)
    data["simulated"] = generated
    print(text)
    lines = data["bank_lines"]
    if lines["evaluated"]:
        print(f"\nbank lines applied correctly: {lines['correct']}/{lines['lines']}")
    else:
        print("\nbank lines applied correctly: not evaluated (payout and suspense are oracles)")
    print(
        f"stages: {', '.join(s['name'] for s in data['stages'])}; "
        f"{data['stream_events']} events in {data['seconds']} s",
        file=sys.stderr,
    )
    return data


def write_result(data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"accuracy-{stamp}.json"
    path.write_text(json.dumps({"at": stamp, "accuracy": data}, indent=2, default=str))
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.accuracy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stream", help="a simulated stream instead of simulating one")
    parser.add_argument("--truth", help="its ground truth (with --stream)")
    parser.add_argument(
        "--stage",
        action="append",
        default=[],
        metavar="MODULE:FACTORY",
        help="a real core replacing the oracle of its role (repeatable)",
    )
    args = parser.parse_args(argv)
    data = accuracy(args.orders, args.days, args.seed, args.stream, args.truth, args.stage)
    print(f"\nwritten {write_result(data)}", file=sys.stderr)


if __name__ == "__main__":
    main()
