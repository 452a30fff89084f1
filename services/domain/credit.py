"""Credit exposure per customer, and the moment it crosses the credit limit.

`apply(state, event) -> (state, outputs)` over one customer's `CreditState`. Exposure is
open receivables plus unpaid orders not yet invoiced: both are the positive open balance
of the customer's orders (before an invoice, an order's receivable is its total), in the
limit's currency. `credit_limit.breached` is emitted when exposure goes above the limit,
`credit_limit.restored` when it comes back to it or below; nothing while it stays on one
side. Each balance.changed replaces the order's earlier contribution, so a repeated
snapshot changes nothing, and an event id seen before is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from schemas import events as ev
from schemas.base import CloudEvent
from services.domain.outputs import output
from services.domain.stored import StoredState

ZERO = Decimal(0)
STATE_FORMAT = b"credit/1:"


@dataclass(frozen=True, slots=True)
class CreditState:
    customer_id: str
    credit_limit: Decimal | None = None
    currency: str | None = None
    # order id -> (currency, exposure): the order's positive open balance, 0 when none.
    orders: Mapping[str, tuple[str, Decimal]] = field(default_factory=dict)
    breached: bool = False
    applied: frozenset[str] = frozenset()


def new_state(customer_id: str) -> CreditState:
    return CreditState(customer_id)


def exposure(state: CreditState) -> Decimal:
    if state.currency is None:
        return ZERO
    return sum((amount for cur, amount in state.orders.values() if cur == state.currency), ZERO)


def over_limit(state: CreditState) -> bool:
    return state.credit_limit is not None and exposure(state) > state.credit_limit


def apply(state: CreditState, event: CloudEvent) -> tuple[CreditState, tuple[CloudEvent, ...]]:
    if event.id in state.applied:
        return state, ()
    updated = _record(state, event)
    if updated is state:
        return state, ()
    updated = replace(updated, applied=state.applied | {event.id})
    now_over = over_limit(updated)
    if now_over == state.breached:
        return updated, ()
    updated = replace(updated, breached=now_over)
    return updated, (_crossing(state, updated, event, now_over),)


def _record(state: CreditState, event: CloudEvent) -> CreditState:
    if isinstance(event, ev.CustomerUpserted):
        customer = event.data
        return replace(state, credit_limit=customer.credit_limit, currency=customer.currency)
    if isinstance(event, ev.BalanceChanged):
        d = event.data
        owed = ZERO if d.status == "cancelled" else max(d.open_balance, ZERO)
        orders = dict(state.orders)
        if owed:
            orders[d.order_id] = (d.currency, owed)
        else:
            orders.pop(d.order_id, None)  # keeps the state small: most orders get paid
        return replace(state, orders=orders)
    return state


def _crossing(
    before: CreditState, after: CreditState, cause: CloudEvent, breached: bool
) -> CloudEvent:
    # A limit withdrawn while breached restores; the event names the limit that was left.
    named = after if after.credit_limit is not None else before
    assert named.credit_limit is not None
    assert named.currency is not None
    data = ev.CreditLimitData(
        customer_id=after.customer_id,
        currency=named.currency,
        credit_limit=named.credit_limit,
        exposure=exposure(replace(after, currency=named.currency)),
        at=cause.time,
    )
    cls = ev.CreditLimitBreached if breached else ev.CreditLimitRestored
    return output(cls, data, cause, after.customer_id)


_STORED = StoredState(CreditState, STATE_FORMAT, "credit")


def dump_state(state: CreditState) -> bytes:
    return _STORED.dump(state)


def load_state(raw: bytes) -> CreditState:
    return _STORED.load(raw)
