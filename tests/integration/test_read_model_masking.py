"""No full account number in any read-model row after a pipeline run fed IBANs and account
numbers (docs/read-models.md, "Masked account numbers"): every column of every table of the
schema is scanned as text."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from projections.rebuild import rebuild
from schemas import events as ev
from schemas.base import CloudEvent
from services import manual_actions
from services.kafka_io import EventProducer
from tests.conftest import Services
from tests.factories import T0, event, order_placed, unique
from tests.kafka_support import OutputWatcher
from tests.projection_support import catch_up, start_at_end
from tests.web_support import catch_up_timeline, start_timeline_at_end

DAY0 = T0.date()


def an_iban(country: str = "DE") -> str:
    bban = "".join(random.choice("0123456789") for _ in range(18))
    remainder = int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    return f"{country}{98 - remainder:02d}{bban}"


def spaced(iban: str) -> str:
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def every_row_as_text(services: Services, schema: str) -> dict[str, list[str]]:
    with psycopg.connect(services.database_url) as conn:
        tables = [
            str(r[0])
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind = 'r'",
                (schema,),
            ).fetchall()
        ]
        return {
            table: [
                str(r[0])
                for r in conn.execute(
                    sql.SQL("SELECT to_jsonb(t)::text FROM {}.{} t").format(
                        sql.Identifier(schema), sql.Identifier(table)
                    )
                ).fetchall()
            ]
            for table in tables
        }


def test_no_read_model_row_holds_a_full_account_number(
    services: Services, read_schema: str, watcher: OutputWatcher
) -> None:
    customer_iban, customer_account, payer_iban = an_iban("DE"), "6222020200112233445", an_iban()
    pasted, remitted = an_iban("NL"), an_iban("FR")
    start_at_end(services, read_schema)
    start_timeline_at_end(services, read_schema)

    customer_id = unique("CUST")
    out = EventProducer(services.kafka_bootstrap)
    out.send(
        event(
            "customer.upserted",
            {"customer_id": customer_id, "name": f"Plum Blossom {customer_id} Ltd.",
             "bank_accounts": [customer_iban, customer_account]},
        )
    )  # fmt: skip
    twins = (unique("ORD"), unique("ORD"))
    for order_id in twins:
        out.send(order_placed(order_id, "80.00", customer_id=customer_id))
        out.send(
            event(
                "invoice.issued",
                {"invoice_id": unique("INV"), "order_id": order_id, "customer_id": customer_id,
                 "amount": "80.00", "currency": "CNY", "issued_at": T0.isoformat(),
                 "due_date": (DAY0 + timedelta(days=30)).isoformat()},
            )
        )  # fmt: skip
    out.flush()

    def line(amount: str, account: str, remittance: str) -> ev.BankLineBooked:
        booked = event(
            "bank_line.booked",
            {"line_id": unique("L"), "account_id": "ACC-MAIN", "booking_date": DAY0.isoformat(),
             "amount": amount, "currency": "CNY", "counterparty_name": "HANGZHOU PAYER",
             "counterparty_account": account, "remittance_info": remittance},
        )  # fmt: skip
        assert isinstance(booked, ev.BankLineBooked)
        return booked

    from_customer = line("80.00", spaced(customer_iban), "thanks")
    from_stranger = line("13.37", payer_iban, f"from {remitted}")
    from_number = line("21.00", customer_account, "invoice")
    for booked in (from_customer, from_stranger, from_number):
        out.send(booked)
    out.flush()

    # The worker has handled the customer's line (whatever it decided: applied or ambiguous).
    def handled(seen: list[tuple[str, CloudEvent]]) -> bool:
        return any(
            getattr(getattr(e, "data", None), "line_id", None) == from_customer.data.line_id
            for _topic, e in seen
        )

    watcher.collect(handled, timeout=120)
    # A clerk's note with an IBAN pasted in, on a mismatch as the worker raises one.
    mismatch_id = unique("MM")
    detected = event(
        "mismatch.detected",
        {"mismatch_id": mismatch_id, "reason": "UNMATCHED_BANK_LINE", "severity": "medium",
         "currency": "CNY", "actual": "13.37", "line_id": from_stranger.data.line_id,
         "detected_at": T0.isoformat()},
    )  # fmt: skip
    found = {
        "mismatch_id": mismatch_id, "reason": "UNMATCHED_BANK_LINE", "status": "open",
        "order_id": None, "payment_id": None, "payout_id": None,
        "line_id": from_stranger.data.line_id, "customer_id": None,
    }  # fmt: skip
    note = f"customer asked for a refund to {spaced(pasted)} instead"
    now = datetime.now(UTC)
    events = [
        detected,
        manual_actions.assignment(found, "alice", by="alice", source="tests", now=now, note=note),
        manual_actions.resolution(found, note, by="alice", source="tests", now=now),
    ]
    manual_actions.publish(out, events)
    out.flush()

    catch_up(services, read_schema, publish_alerts=False)
    catch_up_timeline(services, read_schema)
    rows = every_row_as_text(services, read_schema)

    full = [customer_iban, customer_account, payer_iban, pasted, remitted]
    leaks = [
        (table, number)
        for table, texts in rows.items()
        for number in (*full, *(spaced(n) for n in full))
        if any(number in text for text in texts)
    ]
    assert leaks == []
    # The run did reach the tables: the lines are on the timeline, the note is there masked.
    timeline = "\n".join(rows["timeline"])
    for booked in (from_customer, from_stranger, from_number):
        assert booked.data.line_id in timeline
    masked_note = (
        f"customer asked for a refund to **** **** **** **** **{pasted[-4:-2]} {pasted[-2:]}"
    )
    assert any(masked_note in text for text in rows["mismatch_events"])
    assert any(masked_note in text for text in rows["exception_queue"])
    assert any(masked_note in text for text in rows["timeline"])

    # A rebuild from offset 0 applies the same rules: the same masked rows.
    rebuild(services.kafka_bootstrap, services.database_url, read_schema, swap=False)
    rebuilt = every_row_as_text(services, f"{read_schema}_build")
    keys = [mismatch_id, *(b.data.line_id for b in (from_customer, from_stranger, from_number))]
    for table in ("mismatch_events", "exception_queue", "timeline"):
        ours = sorted(t for t in rows[table] if any(k in t for k in keys))
        assert ours
        assert sorted(t for t in rebuilt[table] if t in set(ours)) == ours
        assert not [t for t in rebuilt[table] if masked_note in t and t not in ours]
