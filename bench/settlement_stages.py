"""The real settlement cores as accuracy stages, in place of the truth-driven oracles.

They are wired as services/worker/settlement_processors.py wires them, minus Kafka: a bank
line is routed (services/domain/bank_routing.py) with the customers seen so far; a line
naming a payout goes to that payout's state, one naming an invoice to the invoice's
references, one from a known payer to the customer's suspense state (which learns open
items from the ledger's balance.changed); states are kept per key in dicts.

    python -m bench.accuracy --stage bench.settlement_stages:PayoutStage \\
        --stage bench.settlement_stages:SuspenseStage
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.events import ReasonCode
from schemas.topics import BANK_LINES, CUSTOMERS, INVOICES, MATCHES, SETTLEMENTS
from services.domain import bank_routing, credit, invoice_references, payouts, suspense
from services.domain.bank_routing import IdPatterns, RoutingRules
from services.domain.candidates import SearchBounds
from services.domain.payers import PayerDirectory
from services.domain.policy import Policy
from services.settings import Settings
from services.simulator.truth import Truth

Outputs = Sequence[CloudEvent]


class _Routing:
    """Routing rules from the default settings and the customers seen so far."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.directory = PayerDirectory()
        self._rules: RoutingRules | None = None

    def learn(self, event: CloudEvent) -> None:
        if isinstance(event, ev.CustomerUpserted):
            self.directory.upsert(event.data)

    def route(self, line: ev.BankLineBooked) -> bank_routing.Route:
        if self._rules is None:
            s = self.settings
            self._rules = RoutingRules(
                IdPatterns(s.payout_patterns),
                IdPatterns(s.reference_patterns),
                IdPatterns(s.invoice_patterns),
                IdPatterns(s.invoice_number_patterns),
                self.directory,
                s.payer_similarity,
            )
        return bank_routing.route(line.data, self._rules)


class PayoutStage:
    name = "payout (services/domain/payouts.apply)"
    role = "payout"
    reasons = frozenset({ReasonCode.PAYOUT_AMOUNT_MISMATCH, ReasonCode.PAYOUT_NOT_IN_BANK})
    topics = frozenset({SETTLEMENTS.name, BANK_LINES.name, CUSTOMERS.name})

    def __init__(self, _truth: Truth, policy: Policy) -> None:
        self.routing = _Routing()
        self.rules = payouts.PayoutRules(policy, self.routing.settings.payout_bank_days)
        self.states: dict[str, payouts.PayoutState] = {}
        self.today: date | None = None

    def handle(self, event: CloudEvent) -> Outputs:
        self.routing.learn(event)
        if isinstance(event, ev.PayoutReported):
            return self._apply(event.data.payout_id, event)
        if isinstance(event, ev.BankLineBooked):
            match self.routing.route(event):
                case bank_routing.ToPayout(payout_id):
                    return self._apply(payout_id, event)
        return ()

    def _apply(self, key: str, event: CloudEvent) -> Outputs:
        state = self.states.get(key) or payouts.new_payout(key)
        self.states[key], outputs = payouts.apply(state, event, self.rules, self.today)
        return outputs

    def close_day(self, event: ev.DayClosed) -> Outputs:
        outputs: list[CloudEvent] = []
        for key in sorted(self.states):
            self.states[key], out = payouts.apply(self.states[key], event, self.rules, self.today)
            outputs.extend(out)
        self.today = event.data.date if self.today is None else max(self.today, event.data.date)
        return outputs


class SuspenseStage:
    name = "suspense (services/domain/suspense.apply, bank_routing, invoice_references)"
    role = "suspense"
    reasons = frozenset({ReasonCode.UNMATCHED_BANK_LINE, ReasonCode.AMBIGUOUS_BANK_LINE})
    topics = frozenset({BANK_LINES.name, CUSTOMERS.name, MATCHES.name, INVOICES.name})

    def __init__(self, _truth: Truth, policy: Policy) -> None:
        self.routing = _Routing()
        s = self.routing.settings
        bounds = SearchBounds(
            max_items=s.combination_max_items,
            max_steps=s.combination_max_steps,
            window_days=s.suspense_window_days,
        )
        self.rules = suspense.SuspenseRules(policy, bounds)
        self.invoice_rules = invoice_references.InvoiceRules(s.payout_bank_days)
        self.customers: dict[str, suspense.Suspense] = {}
        self.invoices: dict[str, invoice_references.InvoiceReferences] = {}
        self.today: date | None = None

    def handle(self, event: CloudEvent) -> Outputs:
        self.routing.learn(event)
        if isinstance(event, ev.BalanceChanged) and event.data.customer_id:
            return self._suspense(event.data.customer_id, event, Decimal(1))
        if isinstance(event, ev.InvoiceIssued):
            return self._invoice(event.data.invoice_id, event)
        if not isinstance(event, ev.BankLineBooked):
            return ()
        match self.routing.route(event):
            case bank_routing.ToOrder(order_id):
                return [bank_routing.applied_by_reference(event, order_id)]
            case bank_routing.ToInvoice(invoice_id):
                return self._invoice(invoice_id, event)
            case bank_routing.ToCustomer(payer):
                return self._suspense(payer.customer_id, event, payer.confidence)
            case bank_routing.UnknownPayer():
                return [bank_routing.unmatched_line(event)]
        return ()

    def _suspense(self, key: str, event: CloudEvent, confidence: Decimal) -> Outputs:
        state = self.customers.get(key) or suspense.new_suspense(key)
        self.customers[key], outputs = suspense.apply(state, event, self.rules, confidence)
        return outputs

    def _invoice(self, key: str, event: CloudEvent) -> Outputs:
        state = self.invoices.get(key) or invoice_references.new_references(key)
        self.invoices[key], outputs = invoice_references.apply(
            state, event, self.invoice_rules, self.today
        )
        return outputs

    def close_day(self, event: ev.DayClosed) -> Outputs:
        outputs: list[CloudEvent] = []
        for key in sorted(self.invoices):
            self.invoices[key], out = invoice_references.apply(
                self.invoices[key], event, self.invoice_rules, self.today
            )
            outputs.extend(out)
        self.today = event.data.date if self.today is None else max(self.today, event.data.date)
        return outputs


class CreditStage:
    """The credit processor's core (services/domain/credit.apply), one state per customer,
    fed the ledger's balance.changed and the customers, as services/worker/credit_processor
    feeds it. It decides no reason code, so it changes no score; it is here so that "all
    the cores" of a run are all of them."""

    name = "credit (services/domain/credit.apply)"
    role = "credit"
    reasons: frozenset[ReasonCode] = frozenset()
    topics = frozenset({CUSTOMERS.name, MATCHES.name})

    def __init__(self, _truth: Truth, _policy: Policy) -> None:
        self.states: dict[str, credit.CreditState] = {}

    def handle(self, event: CloudEvent) -> Outputs:
        if isinstance(event, ev.CustomerUpserted | ev.BalanceChanged):
            key = event.data.customer_id
            if not key:
                return ()
            state = self.states.get(key) or credit.new_state(key)
            self.states[key], outputs = credit.apply(state, event)
            return outputs
        return ()

    def close_day(self, _event: ev.DayClosed) -> Outputs:
        return ()
