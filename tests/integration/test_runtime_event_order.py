"""Event-time order within a task (issue #16, the contract's cross-topic cases).

An order placed at 09:00, cancelled at 10:00 and paid at 11:00, published in one go with
the payment (on o2c.payments) first in arrival order, never shows `order.matched` and shows
PAYMENT_ON_CANCELLED_ORDER. An order placed at 09:00, paid in full at 10:00 and amended
upwards at 11:00, with the amendment published before the payment, is matched and then
reopened: event time wins over arrival order. The expected sequence of outputs, ids
included, is the ledger core's (services/domain/matching.py) applied in event-time order;
the worker's outputs of each key, in offset order, must be exactly that sequence.

All events are on the broker before the worker starts (its group begins just before them),
so every input partition of a task has its records buffered when the task picks the next
one, and the result does not depend on fetch timing.

The merge is over the heads of a task's partitions (design.md, principle 5): records of
one partition keep their offset order. Each scenario is therefore published on a day of
its own, one after the other, so that the times on every partition only go forward, as
they do for a producer that publishes facts as they happen; within a scenario the
arrival order across topics is the wrong one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from schemas.base import CloudEvent
from schemas.topics import topic_for
from services.domain.ledger import new_ledger
from services.domain.matching import apply
from services.domain.policy import Policy
from tests.conftest import Services
from tests.factories import event, order_placed, payment_captured
from tests.runtime_support import (
    OutputReader,
    Workers,
    event_ids,
    fresh_app,
    input_ends,
    new_tag,
    output_ends,
    publish,
    sequences,
    workers,
)

pytestmark = pytest.mark.integration

COPIES = 8  # orders per case: several partitions, several chances to go wrong
NINE = datetime(2035, 11, 6, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
Key = tuple[str, bytes | None]


@dataclass(frozen=True)
class Case:
    order_id: str
    events: list[CloudEvent]  # in event-time order
    arrival: list[CloudEvent]  # in the order they are published


def cancelled_before_paid(order_id: str) -> Case:
    placed = order_placed(order_id, "100.00", at=NINE, payment_terms_days=30)
    cancelled = event("order.cancelled", {"order_id": order_id}, at=NINE + HOUR)
    paid = payment_captured(f"PAY-{order_id}", order_id, "100.00", at=NINE + 2 * HOUR)
    return Case(order_id, [placed, cancelled, paid], [paid, placed, cancelled])


def paid_before_amended(order_id: str) -> Case:
    nine = NINE + timedelta(days=1)  # the day after cancelled_before_paid's
    placed = order_placed(order_id, "100.00", at=nine, payment_terms_days=30)
    paid = payment_captured(f"PAY-{order_id}", order_id, "100.00", at=nine + HOUR)
    amended = event(
        "order.amended", {"order_id": order_id, "total_amount": "120.00"}, at=nine + 2 * HOUR
    )
    return Case(order_id, [placed, paid, amended], [placed, amended, paid])


def expected_outputs(case: Case) -> tuple[dict[Key, list[str]], list[CloudEvent]]:
    """The core's outputs in event-time order: ids per (topic, key), and the outputs."""
    ledger, outputs = new_ledger(case.order_id), list[CloudEvent]()
    for e in case.events:
        ledger, out = apply(ledger, e, Policy(), None)
        outputs.extend(out)
    by_key: dict[Key, list[str]] = {}
    for o in outputs:
        key = o.partition_key()
        by_key.setdefault((topic_for(o).name, key.encode() if key else None), []).append(o.id)
    return by_key, outputs


@dataclass(frozen=True)
class Observed:
    cases: dict[str, list[Case]]
    seen: dict[Key, list[str]]
    types: dict[str, str]  # output id -> type
    reasons: dict[str, str]  # output id -> mismatch reason


@pytest.fixture(scope="module")
def pool(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    yield from workers(services, tmp_path_factory.mktemp("event-order"))


@pytest.fixture(scope="module")
def observed(services: Services, pool: Workers) -> Observed:
    tag = new_tag()
    cases = {
        "cancelled-before-paid": [cancelled_before_paid(f"ORD-{tag}C{n}") for n in range(COPIES)],
        "paid-before-amended": [paid_before_amended(f"ORD-{tag}A{n}") for n in range(COPIES)],
    }
    every = [c for group in cases.values() for c in group]
    source = "rt-event-order"
    app_id = fresh_app(services, source, input_ends(services))
    since = output_ends(services)
    # One go, each scenario after the other, in its arrival order: every case's first record
    # before its others, on all topics.
    publish(
        services,
        [
            e
            for group in cases.values()
            for round_ in zip(*(c.arrival for c in group), strict=True)
            for e in round_
        ],
    )
    expected = sum(len(expected_outputs(c)[1]) for c in every)
    reader = OutputReader(services, since, source, event_ids(e for c in every for e in c.events))
    try:
        worker = pool.start(app_id, name=source, env={"O2C_SOURCE": source})
        reader.wait_until(lambda r: len(r.unique) >= expected, 60, [worker])
        reader.settle(quiet=3, timeout=60, what=source)
        pool.assert_running(worker)
        pool.stop(worker)
    finally:
        reader.close()
    return Observed(
        cases,
        sequences(reader.records),
        {i: o.type for i, o in reader.unique.items()},
        {i: str(o.document["data"].get("reason")) for i, o in reader.unique.items()},
    )


def _report(observed: Observed, case: Case) -> str:
    lines = [f"{case.order_id}: expected (event-time order) / seen (offset order)"]
    for o in expected_outputs(case)[1]:
        lines.append(f"  expected {o.type} {getattr(o.data, 'status', '')} {o.id}")
    for key, ids in observed.seen.items():
        if key[1] == case.order_id.encode():
            lines.append(f"  seen on {key[0]}: {[observed.types[i] for i in ids]}")
    return "\n".join(lines)


def test_an_order_cancelled_before_it_was_paid_is_never_matched(observed: Observed) -> None:
    for case in observed.cases["cancelled-before-paid"]:
        key = ("o2c.matches", case.order_id.encode())
        kinds = [observed.types[i] for i in observed.seen.get(key, [])]
        assert "o2c.order.matched.v1" not in kinds, _report(observed, case)
        mismatches = observed.seen.get(("o2c.mismatches", case.order_id.encode()), [])
        reasons = {observed.reasons[i] for i in mismatches}
        assert "PAYMENT_ON_CANCELLED_ORDER" in reasons, _report(observed, case)


@pytest.mark.parametrize("name", ["cancelled-before-paid", "paid-before-amended"])
def test_outputs_follow_event_time_not_arrival_order(observed: Observed, name: str) -> None:
    for case in observed.cases[name]:
        expected, outputs = expected_outputs(case)
        if name == "paid-before-amended":  # the scenario says what it should
            assert [o.type for o in outputs].count("o2c.order.matched.v1") == 1
        seen = {k: ids for k, ids in observed.seen.items() if k in expected}
        assert seen == expected, _report(observed, case)
        others = [k for k in observed.seen if k[1] == case.order_id.encode() and k not in expected]
        assert not others, _report(observed, case)
