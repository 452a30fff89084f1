"""Bad input never crashes the worker and never vanishes: every invalid message ends in
o2c.dead-letter with its bytes and a reason naming the problem."""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import MAX_EVENT_BYTES, encode
from schemas.topics import CLOCK, DEAD_LETTER, INVOICES, MATCHES, ORDERS, PAYMENTS, REFUNDS
from services.dead_letters import DeadLetter, replay
from services.kafka_io import EventProducer
from tests.conftest import RunningWorker, Services
from tests.factories import document, order_placed, payment_captured, unique
from tests.kafka_support import OutputWatcher

pytestmark = pytest.mark.integration

Doc = dict[str, Any]


def _order(key: str) -> Doc:
    return document(
        "order.placed",
        {
            "order_id": key,
            "customer_id": "C-1",
            "channel": "web",
            "currency": "CNY",
            "total_amount": "10.00",
            "placed_at": "2026-11-02T09:00:00Z",
        },
    )


def _payment(key: str) -> Doc:
    return document(
        "payment.captured",
        {
            "payment_id": f"pay-{key}",
            "order_id": key,
            "method": "card",
            "amount": "10.00",
            "currency": "CNY",
            "captured_at": "2026-11-02T09:00:00Z",
        },
    )


def _with(base: Callable[[str], Doc], change: Callable[[Doc], None]) -> Callable[[str], bytes]:
    def build(key: str) -> bytes:
        doc = base(key)
        change(doc)
        return orjson.dumps(doc)

    return build


def _drop(*path: str) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        for part in path[:-1]:
            doc = doc[part]
        del doc[path[-1]]

    return change


def _set(value: Any, *path: str) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        for part in path[:-1]:
            doc = doc[part]
        doc[path[-1]] = value

    return change


# (name, topic, message bytes for a key, words the reason must contain)
INVALID: list[tuple[str, str, Callable[[str], bytes], str]] = [
    ("truncated JSON", ORDERS.name, lambda k: b'{"specversion": "1.0", "id": ', "not valid JSON"),
    ("empty value", ORDERS.name, lambda k: b"", "empty message"),
    ("whitespace only", PAYMENTS.name, lambda k: b"  \n ", "empty message"),
    ("invalid UTF-8", PAYMENTS.name, lambda k: b'{"id": "\xff\xfe"}', "not valid JSON"),
    ("JSON array", ORDERS.name, lambda k: b"[1, 2]", "must be a JSON object"),
    ("JSON string", ORDERS.name, lambda k: b'"order"', "must be a JSON object"),
    ("JSON null", ORDERS.name, lambda k: b"null", "must be a JSON object"),
    (
        "missing specversion",
        ORDERS.name,
        _with(_order, _drop("specversion")),
        "specversion: missing",
    ),
    ("wrong specversion", ORDERS.name, _with(_order, _set("0.3", "specversion")), "specversion"),
    ("missing id", ORDERS.name, _with(_order, _drop("id")), "id: missing"),
    ("empty id", ORDERS.name, _with(_order, _set("", "id")), "id:"),
    ("missing source", ORDERS.name, _with(_order, _drop("source")), "source: missing"),
    ("missing type", ORDERS.name, _with(_order, _drop("type")), "type: missing"),
    (
        "type not a string",
        ORDERS.name,
        _with(_order, _set(["x"], "type")),
        "type: must be a string",
    ),
    (
        "unknown type",
        ORDERS.name,
        _with(_order, _set("o2c.order.teleported.v1", "type")),
        "unknown event type",
    ),
    (
        "type on the wrong topic",
        PAYMENTS.name,
        lambda k: orjson.dumps(_order(k)),
        "does not belong on o2c.payments",
    ),
    ("missing time", ORDERS.name, _with(_order, _drop("time")), "time: missing"),
    (
        "naive time",
        ORDERS.name,
        _with(_order, _set("2026-11-02T09:00:00", "time")),
        "time: Input should have timezone",
    ),
    ("time not a time", ORDERS.name, _with(_order, _set("yesterday", "time")), "time:"),
    (
        "wrong datacontenttype",
        ORDERS.name,
        _with(_order, _set("text/xml", "datacontenttype")),
        "datacontenttype",
    ),
    ("missing data", ORDERS.name, _with(_order, _drop("data")), "data: missing"),
    ("data not an object", ORDERS.name, _with(_order, _set("x", "data")), "data:"),
    (
        "missing required field",
        ORDERS.name,
        _with(_order, _drop("data", "customer_id")),
        "data.customer_id: missing required field",
    ),
    ("wrong field type", ORDERS.name, _with(_order, _set(42, "data", "channel")), "data.channel"),
    (
        "amount as a JSON number",
        PAYMENTS.name,
        _with(_payment, _set(10.0, "data", "amount")),
        "not the JSON number",
    ),
    (
        "amount with a comma",
        PAYMENTS.name,
        _with(_payment, _set("10,00", "data", "amount")),
        "not a decimal string",
    ),
    (
        "amount in exponent form",
        PAYMENTS.name,
        _with(_payment, _set("1e1", "data", "amount")),
        "not a decimal string",
    ),
    (
        "amount NaN",
        PAYMENTS.name,
        _with(_payment, _set("NaN", "data", "amount")),
        "not a decimal string",
    ),
    (
        "negative amount",
        PAYMENTS.name,
        _with(_payment, _set("-10.00", "data", "amount")),
        "must not be negative",
    ),
    (
        "unknown currency",
        PAYMENTS.name,
        _with(_payment, _set("XYZ", "data", "currency")),
        "unknown ISO 4217 currency code 'XYZ'",
    ),
    (
        "lower-case currency",
        PAYMENTS.name,
        _with(_payment, _set("cny", "data", "currency")),
        "unknown ISO 4217",
    ),
    (
        "too many decimals for CNY",
        PAYMENTS.name,
        _with(_payment, _set("10.001", "data", "amount")),
        "CNY allows 2",
    ),
    (
        "decimals on JPY",
        PAYMENTS.name,
        _with(_payment, _set("JPY", "data", "currency")),
        "JPY allows 0",
    ),
    (
        "naive captured_at",
        PAYMENTS.name,
        _with(_payment, _set("2026-11-02T09:00:00", "data", "captured_at")),
        "data.captured_at",
    ),
    (
        "bad chargeback outcome",
        REFUNDS.name,
        lambda k: orjson.dumps(
            document(
                "chargeback.resolved", {"chargeback_id": "cb", "order_id": k, "outcome": "maybe"}
            )
        ),
        "data.outcome",
    ),
    (
        "invoice due date not a date",
        INVOICES.name,
        lambda k: orjson.dumps(
            document(
                "invoice.issued",
                {
                    "invoice_id": "i",
                    "order_id": k,
                    "customer_id": "C",
                    "amount": "1.00",
                    "currency": "EUR",
                    "issued_at": "2026-11-02T09:00:00Z",
                    "due_date": "next week",
                },
            )
        ),
        "data.due_date",
    ),
    (
        "oversize value",
        ORDERS.name,
        _with(_order, _set("x" * (MAX_EVENT_BYTES + 10), "data", "reason")),
        "exceeds the limit",
    ),
    (
        "key disagrees with the event",
        ORDERS.name,
        lambda k: orjson.dumps(_order("someone-else")),
        "disagrees with the event's key field",
    ),
    (
        "day.closed without a date",
        CLOCK.name,
        lambda k: orjson.dumps(document("day.closed", {"day": "2026-11-02"})),
        "data.date: missing",
    ),
]


def test_the_table_covers_at_least_thirty_kinds_of_invalid_input() -> None:
    assert len({name for name, *_ in INVALID}) >= 30


@pytest.fixture
def watcher(services: Services, worker: RunningWorker) -> Iterator[OutputWatcher]:
    w = OutputWatcher(services.kafka_bootstrap, [MATCHES.name, DEAD_LETTER.name])
    yield w
    w.close()


def _counters(worker: RunningWorker) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics").read()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name in ("o2c_events_processed_total", "o2c_dead_letters_total"):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def test_every_invalid_message_is_dead_lettered_and_nothing_is_lost(
    services: Services, worker: RunningWorker, watcher: OutputWatcher
) -> None:
    before = _counters(worker)
    out = EventProducer(services.kafka_bootstrap)
    expected: dict[str, tuple[str, str, bytes]] = {}  # key -> (case, words, bytes)
    valid_orders: list[str] = []
    for name, topic, build, words in INVALID:
        key = unique("BAD")
        value = build(key)
        expected[key] = (name, words, value)
        out.send_raw(topic, key, value)
        # A valid order right behind each bad message: the worker must still process it.
        order_id = unique("ORD")
        valid_orders.append(order_id)
        out.send(order_placed(order_id, "5.00"))
        out.send(payment_captured(unique("pay"), order_id, "5.00"))
    out.flush()

    def all_arrived(seen: list[tuple[str, CloudEvent]]) -> bool:
        rejected = {e.data.original_key for _, e in seen if isinstance(e, ev.EventRejected)}
        matched = {e.data.order_id for _, e in seen if isinstance(e, ev.OrderMatched)}
        return expected.keys() <= rejected and set(valid_orders) <= matched

    seen = watcher.collect(all_arrived, timeout=120)
    letters = {
        e.data.original_key: e
        for _, e in seen
        if isinstance(e, ev.EventRejected) and e.data.original_key in expected
    }
    for key, (name, words, value) in expected.items():
        letter = letters[key]
        assert words in letter.data.error, f"{name}: {letter.data.error}"
        assert base64.b64decode(letter.data.original_value) == value, name

    after = _counters(worker)
    published = len(INVALID) + 2 * len(valid_orders)
    processed = after["o2c_events_processed_total"] - before.get("o2c_events_processed_total", 0)
    dead = after["o2c_dead_letters_total"] - before.get("o2c_dead_letters_total", 0)
    print(f"published {published}, processed {processed:.0f}, dead-lettered {dead:.0f}")
    assert processed + dead == published
    assert dead == len(INVALID)


def test_replaying_a_still_invalid_dead_letter_rejects_it_again_with_its_reason(
    services: Services, worker: RunningWorker, watcher: OutputWatcher
) -> None:
    key = unique("BAD")
    value = orjson.dumps({**_payment(key), "time": "2026-11-02T09:00:00"})
    out = EventProducer(services.kafka_bootstrap)
    out.send_raw(PAYMENTS.name, key, value)
    out.flush()

    def rejections(count: int) -> Callable[[list[tuple[str, CloudEvent]]], bool]:
        def enough(seen: list[tuple[str, CloudEvent]]) -> bool:
            found = [e for _, e in seen if isinstance(e, ev.EventRejected)]
            return len([e for e in found if e.data.original_key == key]) >= count

        return enough

    seen = watcher.collect(rejections(1))
    (first,) = [
        e for _, e in seen if isinstance(e, ev.EventRejected) and e.data.original_key == key
    ]
    assert replay(services.kafka_bootstrap, [DeadLetter(first)]) == 1

    seen = watcher.collect(rejections(2))
    again = [e for _, e in seen if isinstance(e, ev.EventRejected) and e.data.original_key == key]
    assert again[1].id != first.id  # a new rejection of a new message…
    assert again[1].data.error == first.data.error  # …for the same reason
    assert base64.b64decode(again[1].data.original_value) == value


def test_fixed_upstream_event_published_again_is_processed(
    services: Services, worker: RunningWorker, watcher: OutputWatcher
) -> None:
    order_id = unique("ORD")
    placed = order_placed(order_id, "7.00")
    broken = encode(placed).replace(b'"7.00"', b"7.0")
    out = EventProducer(services.kafka_bootstrap)
    out.send_raw(ORDERS.name, order_id, broken)
    out.send(payment_captured(unique("pay"), order_id, "7.00"))
    out.flush()
    watcher.collect(
        lambda seen: any(
            isinstance(e, ev.EventRejected) and e.data.original_key == order_id for _, e in seen
        )
    )
    out.send(placed)  # upstream fixed the amount and published the same event again
    out.flush()
    watcher.collect(
        lambda seen: any(
            isinstance(e, ev.OrderMatched) and e.data.order_id == order_id for _, e in seen
        )
    )
