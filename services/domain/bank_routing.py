"""Where a bank line goes: a stateless decision over its text and its payer.

In this order, over `remittance_info`, `end_to_end_id` and `bank_reference`:
1. it names a payout (or a provider's batch reference that maps to one) → the payout
   processor, keyed by payout id;
2. it names an order → `payment.applied` to that order (method `reference`);
3. it names an invoice whose number maps to an order by a configured convention → the same;
   any other invoice number → the invoice-reference processor, keyed by invoice id, which
   knows each invoice's order (services.domain.invoice_references);
4. otherwise its payer is resolved to a customer → the suspense processor, keyed by
   customer id; a payer nobody knows → `UNMATCHED_BANK_LINE`.
Debits (amount ≤ 0) that name no payout are outgoing money, not receipts: ignored.

A pattern is a regular expression whose first group (or group `id`) is the id, optionally
followed by ` -> TEMPLATE`, a `re` expansion template that turns the match into the id
(`(?i)\\bbatch\\s*(\\d+) -> adyen-\\1`: a provider's batch number to the payout id the PSP
importer publishes; `\\bINV-(\\d+) -> ORD-\\1`: an invoice number convention).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from schemas import events as ev
from schemas.events import ReasonCode
from services.domain import findings
from services.domain.outputs import output
from services.domain.payers import Payer, PayerDirectory

DEFAULT_PAYOUT_PATTERNS: tuple[str, ...] = (
    r"\b(po_[A-Za-z0-9]{6,})\b",  # Stripe payout ids
    r"\b(PO-[A-Za-z0-9][A-Za-z0-9-]*)\b",
    # "Payout ID: 4711X", "payout no. 2026-11-02-1"; an id has a digit ("payout received").
    r"(?i)\bpayout\s*(?:id|no\.?|nr\.?|#)?\s*[:：]?\s*(?=[A-Za-z0-9_-]*\d)([A-Za-z0-9][A-Za-z0-9_-]{3,})",
)
# Invoice numbering conventions that give the order id directly, e.g.
# '["\\\\bINV-(\\\\d+) -> ORD-\\\\1"]'. None by default: numbers differ everywhere.
DEFAULT_INVOICE_PATTERNS: tuple[str, ...] = ()
# Invoice numbers, looked up among the invoices issued (the invoice-reference processor).
DEFAULT_INVOICE_NUMBER_PATTERNS: tuple[str, ...] = (
    r"\b(INV-[A-Za-z0-9][A-Za-z0-9-]*)\b",
    r"(?i)\binvoice\s*(?:no\.?|number|nr\.?|#)?\s*[:：]?\s*(?=[A-Za-z0-9/_-]*\d)([A-Za-z0-9][A-Za-z0-9/_-]{2,})",
    r"发票号?[:：\s]*([A-Za-z0-9][A-Za-z0-9-]{2,})",
)

_ARROW = " -> "


@dataclass(frozen=True)
class IdPattern:
    regex: re.Pattern[str]
    template: str | None

    @classmethod
    def parse(cls, spec: str) -> IdPattern:
        source, _, template = spec.partition(_ARROW)
        regex = re.compile(source)
        if regex.groups < 1 and not template:
            raise ValueError(f"pattern {spec!r} needs a capturing group or a ' -> ' template")
        return cls(regex, template or None)

    def find(self, text: str) -> str | None:
        found = self.regex.search(text)
        if found is None:
            return None
        if self.template is not None:
            return found.expand(self.template)
        return found.group("id") if "id" in self.regex.groupindex else found.group(1)


class IdPatterns:
    def __init__(self, specs: Iterable[str]) -> None:
        self.patterns: Sequence[IdPattern] = tuple(IdPattern.parse(s) for s in specs)

    def find(self, texts: Iterable[str | None]) -> str | None:
        """The id named by the first text, tried with each pattern in turn."""
        for text in texts:
            if not text:
                continue
            for pattern in self.patterns:
                found = pattern.find(text)
                if found:
                    return found
        return None


@dataclass(frozen=True)
class RoutingRules:
    payouts: IdPatterns
    orders: IdPatterns
    invoices: IdPatterns
    invoice_numbers: IdPatterns
    directory: PayerDirectory
    similarity_threshold: Decimal


@dataclass(frozen=True, slots=True)
class ToPayout:
    payout_id: str


@dataclass(frozen=True, slots=True)
class ToOrder:
    order_id: str
    named: str  # "order" or "invoice"


@dataclass(frozen=True, slots=True)
class ToInvoice:
    invoice_id: str


@dataclass(frozen=True, slots=True)
class ToCustomer:
    payer: Payer


@dataclass(frozen=True, slots=True)
class UnknownPayer:
    pass


@dataclass(frozen=True, slots=True)
class Ignored:
    why: str


Route = ToPayout | ToOrder | ToInvoice | ToCustomer | UnknownPayer | Ignored


def texts_of(line: ev.BankLineBookedData) -> tuple[str | None, ...]:
    return (line.remittance_info, line.end_to_end_id, line.bank_reference)


def route(line: ev.BankLineBookedData, rules: RoutingRules) -> Route:
    texts = texts_of(line)
    payout_id = rules.payouts.find(texts)
    if payout_id is not None:
        return ToPayout(payout_id)
    if line.amount <= 0:
        return Ignored("a debit names no payout: outgoing money is not matched")
    order_id = rules.orders.find(texts)
    if order_id is not None:
        return ToOrder(order_id, "order")
    order_id = rules.invoices.find(texts)
    if order_id is not None:
        return ToOrder(order_id, "invoice")
    invoice_id = rules.invoice_numbers.find(texts)
    if invoice_id is not None:
        return ToInvoice(invoice_id)
    payer = rules.directory.resolve(
        line.counterparty_account, line.counterparty_name, rules.similarity_threshold
    )
    return UnknownPayer() if payer is None else ToCustomer(payer)


def applied_by_reference(line: ev.BankLineBooked, order_id: str) -> ev.PaymentApplied:
    d = line.data
    data = ev.PaymentAppliedData(
        line_id=d.line_id,
        order_id=order_id,
        amount=d.amount,
        currency=d.currency,
        method="reference",
        confidence=Decimal(1),
    )
    return output(ev.PaymentApplied, data, line, order_id)


def unmatched_line(line: ev.BankLineBooked) -> ev.MismatchDetected:
    """UNMATCHED_BANK_LINE for a line whose payer matches no customer."""
    d = line.data
    finding = findings.Finding(
        ReasonCode.UNMATCHED_BANK_LINE,
        d.line_id,
        "",
        d.currency,
        actual=d.amount,
        line_id=d.line_id,
    )
    return findings.detected(finding, line)
