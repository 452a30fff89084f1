"""The payout: a PSP's settlement batch, matched with the bank line that brought it.

`apply(state, event, rules, today) -> (state, outputs)` for one payout id, over
`payout.reported`, the bank lines naming the payout and `day.closed`. When the report and
a line whose amount agrees with the net amount are both known, the payout is matched:
`payout.matched` once, and one `payment.settled` per item that names its order (re-keyed to
that order, where the ledger counts it). Mismatches are derived from the facts:
- PAYOUT_AMOUNT_MISMATCH `items`: the items' gross less fee does not add up to the net;
- PAYOUT_AMOUNT_MISMATCH `bank`: lines name the payout but none carries its net amount;
- PAYOUT_NOT_IN_BANK: no line by `bank_days` business days after the payout date;
- UNMATCHED_BANK_LINE: a line naming a payout nobody reported, `bank_days` after booking.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.events import ReasonCode
from services.domain.findings import Finding, OpenFinding, reconcile
from services.domain.folding import apply_once, recording_ids
from services.domain.outputs import output, trusted
from services.domain.policy import Policy
from services.domain.stored import SortedIds, StoredState

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Item:
    payment_id: str
    order_id: str | None
    kind: str
    gross: Decimal
    fee: Decimal


@dataclass(frozen=True, slots=True)
class Report:
    event_id: str
    provider: str
    currency: str
    net: Decimal
    payout_date: date
    items: tuple[Item, ...]

    @property
    def items_net(self) -> Decimal:
        """Items less their fees; fees are positive amounts the PSP kept."""
        return sum((i.gross - i.fee for i in self.items), ZERO)


@dataclass(frozen=True, slots=True)
class Line:
    event_id: str
    line_id: str
    amount: Decimal
    currency: str
    booking_date: date


@dataclass(frozen=True)
class PayoutRules:
    policy: Policy = field(default_factory=Policy)
    bank_days: int = 2  # business days after the payout date by which its line is due


@dataclass(frozen=True, slots=True)
class PayoutState:
    payout_id: str
    report: Report | None = None
    lines: tuple[Line, ...] = ()
    matched_line: str | None = None
    applied_event_ids: SortedIds = frozenset()
    open_mismatches: tuple[OpenFinding, ...] = ()


def new_payout(payout_id: str) -> PayoutState:
    return PayoutState(payout_id)


def apply(
    state: PayoutState, event: CloudEvent, rules: PayoutRules, today: date | None
) -> tuple[PayoutState, list[CloudEvent]]:
    def report(
        s: PayoutState, e: CloudEvent, day: date | None
    ) -> tuple[PayoutState, list[CloudEvent]]:
        return _report(s, e, rules, day)

    return apply_once(state, event, today, _RECORD, report, [])


def _record(state: PayoutState, event: CloudEvent) -> PayoutState:
    match event:
        case ev.PayoutReported(data=d):
            items = tuple(Item(i.payment_id, i.order_id, i.kind, i.gross, i.fee) for i in d.items)
            report = Report(event.id, d.provider, d.currency, d.net_amount, d.payout_date, items)
            # A resend under another event id: the smaller id wins, whatever came first.
            if state.report is not None and state.report.event_id <= event.id:
                return state
            return replace(state, report=report)
        case ev.BankLineBooked(data=d):
            line = Line(event.id, d.line_id, d.amount, d.currency, d.booking_date)
            others = tuple(x for x in state.lines if x.line_id != d.line_id)
            return replace(state, lines=tuple(sorted((*others, line), key=lambda x: x.line_id)))
    return state


_RECORD = recording_ids(_record)


def agreeing_line(state: PayoutState, policy: Policy) -> Line | None:
    """The first line (by id) that carries the report's net amount."""
    report = state.report
    if report is None:
        return None
    return next(
        (
            line
            for line in state.lines
            if line.currency == report.currency
            and policy.within(line.amount - report.net, report.currency)
        ),
        None,
    )


def findings(state: PayoutState, rules: PayoutRules, today: date | None) -> list[Finding]:
    report, key = state.report, state.payout_id
    due = timedelta(days=rules.bank_days)
    if report is None:
        return [
            Finding(
                ReasonCode.UNMATCHED_BANK_LINE,
                line.line_id,
                "",
                line.currency,
                actual=line.amount,
                payout_id=key,
                line_id=line.line_id,
            )
            for line in state.lines
            if today is not None and today >= line.booking_date + due
        ]
    found: list[Finding] = []
    tolerance_ok = rules.policy.within(report.items_net - report.net, report.currency)
    if report.items and not tolerance_ok:
        found.append(
            Finding(
                ReasonCode.PAYOUT_AMOUNT_MISMATCH,
                key,
                "items",
                report.currency,
                expected=report.net,
                actual=report.items_net,
                payout_id=key,
            )
        )
    if state.lines and agreeing_line(state, rules.policy) is None:
        line = state.lines[0]
        found.append(
            Finding(
                ReasonCode.PAYOUT_AMOUNT_MISMATCH,
                key,
                "bank",
                report.currency,
                expected=report.net,
                actual=line.amount,
                payout_id=key,
                line_id=line.line_id,
            )
        )
    if not state.lines and today is not None and today >= report.payout_date + due:
        found.append(
            Finding(
                ReasonCode.PAYOUT_NOT_IN_BANK,
                key,
                "",
                report.currency,
                expected=report.net,
                payout_id=key,
            )
        )
    return found


def _report(
    state: PayoutState, cause: CloudEvent, rules: PayoutRules, today: date | None
) -> tuple[PayoutState, list[CloudEvent]]:
    outputs: list[CloudEvent] = []
    line = agreeing_line(state, rules.policy)
    if state.matched_line is None and line is not None:
        assert state.report is not None
        outputs += _matched(state.payout_id, state.report, line, cause)
        state = replace(state, matched_line=line.line_id)
    open_now, changes = reconcile(state.open_mismatches, findings(state, rules, today), cause)
    outputs += changes
    if open_now != state.open_mismatches:
        state = replace(state, open_mismatches=open_now)
    return state, outputs


def _matched(payout_id: str, report: Report, line: Line, cause: CloudEvent) -> list[CloudEvent]:
    matched = output(
        ev.PayoutMatched,
        trusted(
            ev.PayoutMatchedData,
            payout_id=payout_id,
            line_id=line.line_id,
            net_amount=report.net,
            currency=report.currency,
        ),
        cause,
        payout_id,
    )
    settled: list[CloudEvent] = [
        output(
            ev.PaymentSettled,
            trusted(
                ev.PaymentSettledData,
                payment_id=item.payment_id,
                order_id=item.order_id,
                payout_id=payout_id,
                line_id=line.line_id,
                amount=item.gross,
                currency=report.currency,
                # Only a charge's fee is the capture's fee (FEE_MISMATCH compares them);
                # refund, chargeback and adjustment items carry fees of their own.
                fee=item.fee if item.kind == "charge" else None,
            ),
            cause,
            f"{payout_id}/{item.payment_id}/{item.kind}",
        )
        for item in report.items
        # An item that names no order cannot reach a ledger; it still counts in the totals.
        if item.order_id is not None
    ]
    return [matched, *settled]


# --- storage ------------------------------------------------------------------------------

STATE_FORMAT = b"payout/1\n"
_STORED = StoredState(PayoutState, STATE_FORMAT, "payouts")


def dump_state(state: PayoutState) -> bytes:
    return _STORED.dump(state)


def load_state(raw: bytes) -> PayoutState:
    return _STORED.load(raw)
