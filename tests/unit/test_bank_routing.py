from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from schemas import events as ev
from services.domain.bank_routing import (
    DEFAULT_INVOICE_NUMBER_PATTERNS,
    DEFAULT_PAYOUT_PATTERNS,
    IdPattern,
    IdPatterns,
    Ignored,
    RoutingRules,
    ToCustomer,
    ToInvoice,
    ToOrder,
    ToPayout,
    UnknownPayer,
    applied_by_reference,
    route,
    unmatched_line,
)
from services.domain.payers import PayerDirectory
from services.domain.references import DEFAULT_ORDER_PATTERNS
from tests.factories import event

DIRECTORY = PayerDirectory.of(
    [ev.CustomerUpsertedData(customer_id="C-ACME", name="Acme GmbH", bank_accounts=("AT61 1904",))]
)
RULES = RoutingRules(
    payouts=IdPatterns([*DEFAULT_PAYOUT_PATTERNS, r"(?i)\bbatch\s*(\d+) -> adyen-\1"]),
    orders=IdPatterns(DEFAULT_ORDER_PATTERNS),
    invoices=IdPatterns([r"\bINV-(\d+) -> ORD-\1"]),
    invoice_numbers=IdPatterns(DEFAULT_INVOICE_NUMBER_PATTERNS),
    directory=DIRECTORY,
    similarity_threshold=Decimal("0.85"),
)


def line(amount: str = "100.00", **fields: Any) -> ev.BankLineBooked:
    data = {"line_id": "L-1", "account_id": "ACC", "booking_date": "2026-11-02",
            "amount": amount, "currency": "EUR", **fields}  # fmt: skip
    booked = event("bank_line.booked", data)
    assert isinstance(booked, ev.BankLineBooked)
    return booked


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"remittance_info": "STRIPE PAYOUT po_1OkLm2AbCdEf"}, ToPayout("po_1OkLm2AbCdEf")),
        ({"bank_reference": "PO-2026-11-02"}, ToPayout("PO-2026-11-02")),
        ({"end_to_end_id": "Payout ID: X9Y8Z7"}, ToPayout("X9Y8Z7")),
        ({"remittance_info": "Adyen settlement batch 117"}, ToPayout("adyen-117")),
        ({"remittance_info": "payout no. 2026-11-02-1"}, ToPayout("2026-11-02-1")),
        ({"remittance_info": "payout received", "counterparty_name": "?"}, UnknownPayer()),
        ({"remittance_info": "payment ORD-1001 thanks"}, ToOrder("ORD-1001", "order")),
        ({"remittance_info": "订单号：A20261102"}, ToOrder("A20261102", "order")),
        ({"remittance_info": "invoice INV-1001"}, ToOrder("ORD-1001", "invoice")),  # convention
        ({"remittance_info": "INV-A77 and INV-A78"}, ToInvoice("INV-A77")),  # first named
        ({"remittance_info": "Invoice no. 4711/26"}, ToInvoice("4711/26")),
        ({"remittance_info": "发票号：FP20261102"}, ToInvoice("FP20261102")),
        # The payout wins over an order number in the same text.
        ({"remittance_info": "po_1OkLm2AbCdEf ORD-1"}, ToPayout("po_1OkLm2AbCdEf")),
    ],
)
def test_lines_naming_a_payout_order_or_invoice_are_routed_by_their_text(
    fields: dict[str, str], expected: object
) -> None:
    assert route(line(**fields).data, RULES) == expected


def test_line_naming_nothing_goes_to_its_payer() -> None:
    routed = route(line(counterparty_account="at61-1904", remittance_info="thanks").data, RULES)
    assert isinstance(routed, ToCustomer)
    assert (routed.payer.customer_id, routed.payer.how) == ("C-ACME", "account")


def test_line_of_an_unknown_payer_is_unmatched() -> None:
    booked = line(counterparty_name="Globex Inc")
    assert route(booked.data, RULES) == UnknownPayer()
    mismatch = unmatched_line(booked)
    assert mismatch.data.reason.value == "UNMATCHED_BANK_LINE"
    assert (mismatch.data.line_id, mismatch.partition_key()) == ("L-1", "L-1")
    assert mismatch.causationid == booked.id


def test_debits_are_not_receipts_unless_they_name_a_payout() -> None:
    assert isinstance(route(line("-20.00", remittance_info="ORD-1").data, RULES), Ignored)
    assert route(line("-20.00", remittance_info="po_NEGATIVE1").data, RULES) == ToPayout(
        "po_NEGATIVE1"
    )


def test_line_naming_an_order_is_applied_by_reference_with_full_confidence() -> None:
    booked = line(remittance_info="ORD-7")
    applied = applied_by_reference(booked, "ORD-7")
    assert applied.partition_key() == "ORD-7"
    assert (applied.data.method, applied.data.confidence) == ("reference", Decimal(1))
    assert (applied.data.line_id, applied.data.amount) == ("L-1", Decimal("100.00"))
    assert applied.id == applied_by_reference(booked, "ORD-7").id


def test_a_pattern_without_a_group_or_template_is_refused() -> None:
    with pytest.raises(ValueError, match="capturing group"):
        IdPattern.parse(r"ORD-\d+")
