"""Issue 21's masking test: card numbers and IBANs fed in through the real pipeline (worker
and projections as processes, the CLI) come out nowhere in full, and matching still works."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from psycopg import sql

from schemas.base import CloudEvent
from schemas.events import OrderMatched
from schemas.topics import MATCHES, OUTPUT_TOPICS
from services import kafka_io
from services.dead_letters import read_dead_letters
from services.kafka_io import EventProducer
from services.masking import luhn_valid
from tests.conftest import RunningWorker, Services, _free_port, service_env, start_worker
from tests.conftest import stop_worker as stop
from tests.factories import document, event, unique
from tests.kafka_support import OutputWatcher, commit_offsets, end_offsets
from tests.projection_support import start_at_end
from tests.web_support import start_timeline_at_end

pytestmark = pytest.mark.e2e

O2C = str(Path(sys.executable).with_name("o2c"))

# The schemes' public test numbers, written as people write them.
CARDS = {
    "visa": "4111111111111111",
    "mastercard": "5555 5555 5555 4444",
    "amex": "3782-822463-10005",
    "discover": "6011111111111117",
    "visa_13": "4222222222222",
    "jcb": "3530111333300000",
}
PAYER_IBAN = "DE89 3704 0044 0532 0130 00"
OUR_IBAN = "NL91ABNA0417164300"
CUSTOMER_IBAN = "GB82WEST12345698765432"
IBANS = (PAYER_IBAN, OUR_IBAN, CUSTOMER_IBAN)


def _numeric_order_id() -> str:
    """A 16-digit marketplace-style order id that passes Luhn, as one in ten such ids do."""
    body = "5" + str(uuid.uuid4().int)[:14]  # a Mastercard-like prefix: a card but for its place
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def _compact(text: str) -> str:
    return re.sub(r"[\s-]", "", text)


def leaks(text: str, *, ibans: bool = True) -> list[str]:
    """Which fed card numbers (and IBANs) `text` holds in full, however spaced."""
    flat = _compact(text)
    found = [name for name, card in CARDS.items() if _compact(card) in flat]
    if ibans:
        found += [iban for iban in IBANS if _compact(iban) in flat]
    return found


@pytest.fixture
def own_worker(services: Services, tmp_path: Path) -> Iterator[RunningWorker]:
    """A worker of its own, so that its log and its metrics are this test's alone."""
    app_id = f"test-mask-{uuid.uuid4().hex[:8]}"
    commit_offsets(services.kafka_bootstrap, app_id, end_offsets(services.kafka_bootstrap))
    running = start_worker(services, tmp_path / "worker", app_id)
    yield running
    stop(running)


def _o2c(services: Services, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [O2C, *args],
        capture_output=True,
        text=True,
        errors="replace",  # topics may hold bytes that are not UTF-8 (other tests' garbage)
        env=service_env(services, **env),
        timeout=300,
    )


def _events(o1: str, o2: str, customer: str, line1: str, line2: str) -> list[CloudEvent]:
    c = CARDS
    return [
        event("customer.upserted", {"customer_id": customer, "name": "Li Wei Trading",
              "bank_accounts": [CUSTOMER_IBAN], "payer_names": ["LI WEI", f"LI WEI {c['jcb']}"]}),
        event("order.placed", {"order_id": o1, "customer_id": customer, "channel": "web",
              "currency": "EUR", "total_amount": "100.00", "placed_at": "2026-11-02T09:00:00Z",
              "region": f"east {c['visa_13']}"}),
        event("order.amended", {"order_id": o1, "total_amount": "100.00", "currency": "EUR",
              "reason": f"customer read card {c['amex']} on the phone"}),
        event("order.placed", {"order_id": o2, "customer_id": customer, "channel": "tmall",
              "currency": "EUR", "total_amount": "70.00", "placed_at": "2026-11-02T09:00:00Z"}),
        event("payment.captured", {"payment_id": unique("pay"), "order_id": o1,
              "method": "card", "amount": "40.00", "currency": "EUR",
              "captured_at": "2026-11-02T09:05:00Z", "reference": f"card {c['visa']}"}),
        # Matching by reference with a card number beside the order id.
        event("bank_line.booked", {"line_id": line1, "account_id": OUR_IBAN,
              "booking_date": "2026-11-02", "amount": "60.00", "currency": "EUR",
              "counterparty_name": "LI WEI", "counterparty_account": PAYER_IBAN,
              "remittance_info": f"{o1} paid with {c['mastercard']} from {PAYER_IBAN}"}),
        # A numeric order id that passes Luhn is an id a pattern takes: kept, and matched.
        event("bank_line.booked", {"line_id": line2, "account_id": OUR_IBAN,
              "booking_date": "2026-11-02", "amount": "70.00", "currency": "EUR",
              "counterparty_name": f"LI WEI {c['discover']}", "counterparty_account": PAYER_IBAN,
              "remittance_info": f"order no {o2}"}),
    ]  # fmt: skip


def _invalid_line(line_id: str) -> bytes:
    """A bank line with three decimals in EUR: dead-lettered, with a card number in it."""
    data = {"line_id": line_id, "account_id": OUR_IBAN, "booking_date": "2026-11-02",
            "amount": "12.345", "currency": "EUR", "counterparty_account": PAYER_IBAN,
            "remittance_info": f"refund to {CARDS['visa']} please"}  # fmt: skip
    return orjson.dumps(document("bank_line.booked", data))


def _rows(services: Services, schema: str) -> dict[str, list[str]]:
    with psycopg.connect(services.database_url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
                " AND table_type = 'BASE TABLE'",
                (schema,),
            )
        ]
        return {
            table: [
                r[0]
                for r in conn.execute(
                    sql.SQL("SELECT to_jsonb(t)::text FROM {}.{} t").format(
                        sql.Identifier(schema), sql.Identifier(table)
                    )
                )
            ]
            for table in tables
        }


def _masked_count(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read().decode()
    found = re.findall(r'^o2c_card_numbers_masked_total\{topic="([^"]+)"\} (\S+)$', body, re.M)
    return {topic: float(value) for topic, value in found}


def test_no_full_card_number_or_iban_leaves_the_pipeline_and_matching_still_works(
    services: Services, own_worker: RunningWorker, read_schema: str, tmp_path: Path
) -> None:
    o1, o2 = unique("ORD"), _numeric_order_id()
    customer, line1, line2, bad_line = (unique(p) for p in ("CUST", "L", "L", "L"))
    start_at_end(services, read_schema)
    start_timeline_at_end(services, read_schema)
    outputs_before = kafka_io.end_offsets(services.kafka_bootstrap, [t.name for t in OUTPUT_TOPICS])
    watcher = OutputWatcher(services.kafka_bootstrap, [MATCHES.name])
    try:
        out = EventProducer(services.kafka_bootstrap)
        for e in _events(o1, o2, customer, line1, line2):
            out.send(e)
        out.send_raw("o2c.bank-lines", OUR_IBAN, _invalid_line(bad_line), "o2c.bank_line.booked.v1")
        out.flush()

        def both_matched(seen: list[tuple[str, CloudEvent]]) -> bool:
            ids = {e.data.order_id for _, e in seen if isinstance(e, OrderMatched)}
            return {o1, o2} <= ids

        # Matching still works: by the ORD- reference beside a card number, and by a
        # numeric order id that passes Luhn.
        matched = watcher.collect(both_matched, timeout=180)
    finally:
        watcher.close()
    paid = {e.data.order_id: e.data.paid for _, e in matched if isinstance(e, OrderMatched)}
    assert (str(paid[o1]), str(paid[o2])) == ("100.00", "70.00")

    # The projections as a process, as deployed: read models and timeline.
    projections = _o2c(
        services,
        "projections", "run", "--until-idle", "8",
        O2C_READ_SCHEMA=read_schema, O2C_PROJECTION_METRICS_PORT=str(_free_port()),
    )  # fmt: skip
    assert projections.returncode == 0, projections.stderr

    # Every output and internal topic message since the test began, dead letters included.
    written: list[str] = []
    starts = {(tp.topic, tp.partition): tp.offset for tp in outputs_before}
    for msg in kafka_io.read_until_idle(
        services.kafka_bootstrap, [t.name for t in OUTPUT_TOPICS], 3.0
    ):
        if (msg.offset() or 0) >= starts.get((str(msg.topic()), msg.partition() or 0), 0):
            written.append((msg.value() or b"").decode("utf-8", "replace"))
    assert written
    assert [leaks(v, ibans=False) for v in written if leaks(v, ibans=False)] == []

    letters = [
        letter
        for letter in read_dead_letters(services.kafka_bootstrap)
        if bad_line.encode() in letter.original_value
    ]
    assert len(letters) == 1
    (letter,) = letters
    assert leaks(letter.original_value.decode(), ibans=False) == []
    assert leaks(letter.event.data.error, ibans=False) == []

    # Read models: every row of every table of the schema (IBANs there: another change).
    rows = _rows(services, read_schema)
    assert any(o1 in r for r in rows["timeline"])
    assert any(o1 in r for r in rows["orders"])
    assert {t: [r for r in found if leaks(r, ibans=False)] for t, found in rows.items()} == {
        t: [] for t in rows
    }

    # What people read: tail of every topic fed and of the outputs, dlq show.
    shown: list[subprocess.CompletedProcess[str]] = []
    for topic in ("o2c.bank-lines", "o2c.orders", "o2c.payments", "o2c.customers", "o2c.matches"):
        for extra in ((), ("--json",)):
            tail = _o2c(services, "tail", topic, "--from-beginning", "--until-idle", "3", *extra)
            assert tail.returncode == 0, tail.stderr
            shown.append(tail)
    assert any(line1 in t.stdout for t in shown)
    dlq = _o2c(services, "dlq", "show", letter.id)
    assert dlq.returncode == 0, dlq.stderr
    assert bad_line in dlq.stdout
    shown.append(dlq)
    # Topics are read from the beginning: the lines of this test's events are judged.
    ours = (o1, o2, customer, line1, line2, bad_line)
    lines = [
        (t.args[1:3], line)
        for t in shown
        for line in (t.stdout + t.stderr).splitlines()
        if t.args[1] == "dlq" or any(i in line for i in ours)
    ]
    assert len(lines) > 10
    assert [(where, leaks(line)) for where, line in lines if leaks(line)] == []

    # --reveal shows the accounts (kept for a replay) but no card number, and says so.
    revealed = _o2c(services, "dlq", "show", letter.id, "--reveal")
    assert revealed.returncode == 0, revealed.stderr
    assert _compact(PAYER_IBAN) in _compact(revealed.stdout)
    assert leaks(revealed.stdout, ibans=False) == []
    assert "--reveal" in revealed.stderr
    assert "OS user" in revealed.stderr

    # Logs of the processes: the worker's and the projections'.
    logs = own_worker.log.read_text() + projections.stdout + projections.stderr
    assert [line for line in logs.splitlines() if leaks(line)] == []
    warnings = [line for line in logs.splitlines() if "card numbers masked in" in line]
    assert any("o2c.bank-lines/" in w and "remittance_info" in w for w in warnings)
    assert any("dead letter of o2c.bank-lines/" in w for w in warnings)

    # Counted per input topic: on bank lines one in a remittance text, one in a payer name
    # and one in the dead letter; the payment's reference; the order's region and the
    # amendment's reason; the customer's payer name.
    counted = _masked_count(own_worker.metrics_port)
    assert counted.get("o2c.bank-lines") == 3
    assert counted.get("o2c.payments") == 1
    assert counted.get("o2c.orders") == 2
    assert counted.get("o2c.customers") == 1
