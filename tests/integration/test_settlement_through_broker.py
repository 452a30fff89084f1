"""Payouts, bank lines and the suspense account, end to end through the real broker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.topics import CLOCK
from services import manual_actions
from services.kafka_io import EventProducer
from tests.conftest import Services
from tests.factories import T0, event, order_placed, payment_captured, unique
from tests.kafka_support import OutputWatcher

pytestmark = pytest.mark.integration

Seen = list[tuple[str, CloudEvent]]
DAY0 = T0.date()


def payout(payout_id: str, net: str, items: list[dict[str, Any]], day: int = 0) -> CloudEvent:
    gross = sum(float(i["gross"]) for i in items)
    fee = sum(float(i["fee"]) for i in items)
    return event(
        "payout.reported",
        {
            "payout_id": payout_id,
            "provider": "stripe",
            "currency": "CNY",
            "gross_amount": f"{gross:.2f}",
            "fee_amount": f"{fee:.2f}",
            "net_amount": net,
            "payout_date": (DAY0 + timedelta(days=day)).isoformat(),
            "items": items,
        },
    )


def bank_line(amount: str, **fields: Any) -> CloudEvent:
    data = {
        "line_id": unique("L"),
        "account_id": "ACC-MAIN",
        "booking_date": DAY0.isoformat(),
        "amount": amount,
        "currency": "CNY",
        **fields,
    }
    return event("bank_line.booked", data)


def item(payment_id: str, order_id: str, gross: str, fee: str) -> dict[str, Any]:
    return {"payment_id": payment_id, "order_id": order_id, "kind": "charge", "gross": gross,
            "fee": fee}  # fmt: skip


def statuses(seen: Seen) -> dict[str, str]:
    """The latest status each order's balance.changed reported."""
    return {e.data.order_id: e.data.status for _, e in seen if isinstance(e, ev.BalanceChanged)}


def all_settled(order_ids: list[str]) -> Callable[[Seen], bool]:
    return lambda seen: all(statuses(seen).get(o) == "settled" for o in order_ids)


def mismatch(seen: Seen, reason: str, **where: str) -> ev.MismatchDetected | None:
    for _, e in seen:
        if (
            isinstance(e, ev.MismatchDetected)
            and e.data.reason.value == reason
            and all(getattr(e.data, k) == v for k, v in where.items())
        ):
            return e
    return None


def test_payout_found_in_the_bank_settles_every_items_order(
    services: Services, watcher: OutputWatcher
) -> None:
    orders = [unique("ORD") for _ in range(3)]
    payments = [unique("pay") for _ in orders]
    payout_id = f"po_{unique('x').replace('-', '')}"
    out = EventProducer(services.kafka_bootstrap)
    for order_id, pay in zip(orders, payments, strict=True):
        out.send(order_placed(order_id, "100.00"))
        out.send(payment_captured(pay, order_id, "100.00", method="card", fee_amount="2.00"))
    out.send(payout(payout_id, "294.00", [item(p, o, "100.00", "2.00") for p, o in
                                          zip(payments, orders, strict=True)]))  # fmt: skip
    line = bank_line("294.00", remittance_info=f"STRIPE PAYOUT {payout_id}")
    out.send(line)
    out.flush()

    def settled_and_matched(seen: Seen) -> bool:
        return all_settled(orders)(seen) and any(isinstance(e, ev.PayoutMatched) for _, e in seen)

    # Partitions are read in no particular order: wait for both.
    seen = watcher.collect(settled_and_matched, timeout=120)
    matched = [e for _, e in seen if isinstance(e, ev.PayoutMatched)]
    assert [(m.data.payout_id, m.data.line_id) for m in matched] == [
        (payout_id, line.data.line_id)  # type: ignore[attr-defined]
    ]
    settled = [e for _, e in seen if isinstance(e, ev.PaymentSettled)]
    assert sorted(s.data.order_id for s in settled) == sorted(orders)
    assert all(s.causationid is not None for s in settled)
    assert mismatch(seen, "PAYOUT_AMOUNT_MISMATCH", payout_id=payout_id) is None
    assert all(mismatch(seen, "FEE_MISMATCH", order_id=o) is None for o in orders)


def test_one_bank_line_settles_three_invoices_of_one_customer(
    services: Services, watcher: OutputWatcher
) -> None:
    customer_id, account = unique("CUST"), unique("CN62-0000")
    out = EventProducer(services.kafka_bootstrap)
    out.send(
        event(
            "customer.upserted",
            {"customer_id": customer_id, "name": f"Lotus Trading {customer_id} Co., Ltd.",
             "bank_accounts": [account]},
        )
    )  # fmt: skip
    amounts = ["120.00", "75.50", "310.00", "999.00", "45.25"]
    orders = [unique("ORD") for _ in amounts]
    for order_id, amount in zip(orders, amounts, strict=True):
        out.send(order_placed(order_id, amount, customer_id=customer_id, payment_terms_days=30))
        out.send(
            event(
                "invoice.issued",
                {"invoice_id": unique("INV"), "order_id": order_id, "customer_id": customer_id,
                 "amount": amount, "currency": "CNY", "issued_at": T0.isoformat(),
                 "due_date": (DAY0 + timedelta(days=30)).isoformat()},
            )
        )  # fmt: skip
    out.flush()
    # The line pays the first three invoices, and names none of them.
    line = bank_line("505.50", counterparty_account=account, remittance_info="payment as agreed")
    out.send(line)
    out.flush()

    paid = orders[:3]
    seen = watcher.collect(all_settled(paid), timeout=120)
    applied = [e for _, e in seen if isinstance(e, ev.PaymentApplied)]
    assert sorted(a.data.order_id for a in applied) == sorted(paid)
    assert {a.data.method for a in applied} == {"combination"}
    assert all(a.data.line_id == line.data.line_id for a in applied)  # type: ignore[attr-defined]
    assert all(statuses(seen).get(o) != "settled" for o in orders[3:])


def test_bank_line_naming_an_order_settles_it(services: Services, watcher: OutputWatcher) -> None:
    order_id = f"ORD-{unique('B')}"
    out = EventProducer(services.kafka_bootstrap)
    out.send(order_placed(order_id, "88.00"))
    out.send(bank_line("88.00", remittance_info=f"Payment {order_id} thank you"))
    out.flush()
    seen = watcher.collect(all_settled([order_id]), timeout=120)
    (applied,) = [e for _, e in seen if isinstance(e, ev.PaymentApplied)]
    assert (applied.data.method, applied.data.confidence) == ("reference", Decimal(1))


def test_bank_line_naming_an_invoice_settles_the_invoices_order(
    services: Services, watcher: OutputWatcher
) -> None:
    order_id, invoice_id = unique("ORD"), f"INV-{unique('I')}"
    out = EventProducer(services.kafka_bootstrap)
    # The line is booked before the invoice is published: it waits for it.
    out.send(bank_line("64.00", remittance_info=f"settles {invoice_id}"))
    out.send(order_placed(order_id, "64.00"))
    out.send(
        event(
            "invoice.issued",
            {"invoice_id": invoice_id, "order_id": order_id, "customer_id": "C-1",
             "amount": "64.00", "currency": "CNY", "issued_at": T0.isoformat(),
             "due_date": (DAY0 + timedelta(days=30)).isoformat()},
        )
    )  # fmt: skip
    out.flush()
    seen = watcher.collect(all_settled([order_id]), timeout=120)
    (applied,) = [e for _, e in seen if isinstance(e, ev.PaymentApplied)]
    assert (applied.data.order_id, applied.data.method) == (order_id, "reference")


def test_unknown_payer_is_an_unmatched_bank_line(
    services: Services, watcher: OutputWatcher
) -> None:
    line = bank_line("12.34", counterparty_name=f"Nobody {unique('N')} GmbH")
    out = EventProducer(services.kafka_bootstrap)
    out.send(line)
    out.flush()
    line_id = line.data.line_id  # type: ignore[attr-defined]
    watcher.collect(
        lambda seen: mismatch(seen, "UNMATCHED_BANK_LINE", line_id=line_id) is not None,
        timeout=120,
    )


def test_payout_without_bank_line_is_reported_once_its_days_have_passed(
    services: Services, watcher: OutputWatcher
) -> None:
    order_id, pay = unique("ORD"), unique("pay")
    payout_id = f"po_{unique('n').replace('-', '')}"
    out = EventProducer(services.kafka_bootstrap)
    out.send(payout(payout_id, "49.00", [item(pay, order_id, "50.00", "1.00")]))
    out.flush()
    for offset in range(3):  # the payout day and the two days its line may take
        day = DAY0 + timedelta(days=offset)
        out.send(event("day.closed", {"date": day.isoformat()}, id=f"day-{day}", at=T0), CLOCK)
    out.flush()
    seen = watcher.collect(
        lambda seen: mismatch(seen, "PAYOUT_NOT_IN_BANK", payout_id=payout_id) is not None,
        timeout=120,
    )
    raised = mismatch(seen, "PAYOUT_NOT_IN_BANK", payout_id=payout_id)
    assert raised is not None
    assert raised.data.expected == Decimal("49.00")

    # The line arrives late: the payout matches and the mismatch is resolved.
    out.send(bank_line("49.00", bank_reference=payout_id))
    out.flush()
    watcher.collect(
        lambda seen: any(
            isinstance(e, ev.MismatchResolved) and e.data.mismatch_id == raised.data.mismatch_id
            for _, e in seen
        ),
        timeout=120,
    )


def test_payout_item_fee_unlike_the_captures_fee_is_a_fee_mismatch(
    services: Services, watcher: OutputWatcher
) -> None:
    order_id, pay = unique("ORD"), unique("pay")
    payout_id = f"po_{unique('f').replace('-', '')}"
    out = EventProducer(services.kafka_bootstrap)
    out.send(order_placed(order_id, "200.00"))
    out.send(payment_captured(pay, order_id, "200.00", method="card", fee_amount="3.00"))
    out.send(payout(payout_id, "195.50", [item(pay, order_id, "200.00", "4.50")]))
    out.send(bank_line("195.50", remittance_info=payout_id))
    out.flush()
    seen = watcher.collect(
        lambda seen: mismatch(seen, "FEE_MISMATCH", order_id=order_id) is not None,
        timeout=120,
    )
    raised = mismatch(seen, "FEE_MISMATCH", order_id=order_id)
    assert raised is not None
    expected = (Decimal("3.00"), Decimal("4.50"), pay)
    assert (raised.data.expected, raised.data.actual, raised.data.payment_id) == expected


def test_a_line_applied_by_hand_is_not_applied_again_by_the_suspense_processor(
    services: Services, watcher: OutputWatcher
) -> None:
    """The workbench's "apply suggestion" through the real broker and worker: once the
    ledger reports the first order paid, the second alone would match the line; the
    suspense processor, which has the manual application's copy, leaves it be."""
    customer_id, account = unique("CUST"), unique("CN62-0001")
    out = EventProducer(services.kafka_bootstrap)
    out.send(
        event(
            "customer.upserted",
            {"customer_id": customer_id, "name": f"Plum Blossom {customer_id} Ltd.",
             "bank_accounts": [account]},
        )
    )  # fmt: skip

    def open_item(order_id: str, amount: str, at: datetime = T0) -> None:
        out.send(order_placed(order_id, amount, customer_id=customer_id, at=at))
        out.send(
            event(
                "invoice.issued",
                {"invoice_id": unique("INV"), "order_id": order_id, "customer_id": customer_id,
                 "amount": amount, "currency": "CNY", "issued_at": T0.isoformat(),
                 "due_date": (DAY0 + timedelta(days=30)).isoformat()},
                at=at,
            )
        )  # fmt: skip

    first, second = unique("ORD"), unique("ORD")
    open_item(first, "80.00")
    open_item(second, "80.00")
    out.flush()
    line = bank_line("80.00", counterparty_account=account, remittance_info="thanks")
    out.send(line)
    out.flush()
    line_id = line.data.line_id  # type: ignore[attr-defined]
    seen = watcher.collect(
        lambda seen: mismatch(seen, "AMBIGUOUS_BANK_LINE", line_id=line_id) is not None,
        timeout=120,
    )
    ambiguous = mismatch(seen, "AMBIGUOUS_BANK_LINE", line_id=line_id)
    assert ambiguous is not None
    (chosen,) = [s for s in ambiguous.data.suggestions if s.order_ids == (first,)]
    found = {
        "mismatch_id": ambiguous.data.mismatch_id, "reason": "AMBIGUOUS_BANK_LINE",
        "status": "open", "currency": "CNY", "actual": ambiguous.data.actual,
        "order_id": None, "payment_id": None, "payout_id": None, "line_id": line_id,
        "customer_id": ambiguous.data.customer_id,
    }  # fmt: skip
    now = datetime.now(UTC)
    applied_by_hand = manual_actions.suggestion_applied(
        found, chosen, {first: Decimal("80.00")}, by="alice", source="tests", now=now
    )
    manual_actions.publish(out, applied_by_hand)
    watcher.collect(all_settled([first]), timeout=120)

    # Afterwards (event time), another line of this customer that one new item alone fits:
    # once it is applied, the suspense processor has seen the first order paid.
    later = now + timedelta(seconds=1)
    marker_order = unique("ORD")
    open_item(marker_order, "55.00", at=later)
    out.flush()
    marker = event(
        "bank_line.booked",
        {"line_id": unique("L"), "account_id": "ACC-MAIN", "booking_date": DAY0.isoformat(),
         "amount": "55.00", "currency": "CNY", "counterparty_account": account,
         "remittance_info": "thanks again"},
        at=later,
    )  # fmt: skip
    out.send(marker)
    out.flush()
    seen = watcher.collect(all_settled([marker_order]), timeout=120)

    of_the_line = [
        e for _, e in seen if isinstance(e, ev.PaymentApplied) and e.data.line_id == line_id
    ]
    assert [(e.data.order_id, e.data.method) for e in of_the_line] == [(first, "manual")]
    assert statuses(seen).get(second) != "settled"
    assert not any(  # the clerk's resolution is the only one
        isinstance(e, ev.MismatchResolved)
        and e.data.mismatch_id == ambiguous.data.mismatch_id
        and e.data.resolution == "auto"
        for _, e in seen
    )
