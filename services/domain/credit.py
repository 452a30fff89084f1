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

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from pydantic import TypeAdapter

from schemas import events as ev
from schemas.base import CloudEvent
from services.domain import rows
from services.domain.folding import evolve
from services.domain.keyed import Keyed, changed_entries
from services.domain.outputs import output
from services.domain.stored import StateFormatError

ZERO = Decimal(0)
STATE_FORMAT = b"credit/2:"
LEGACY_FORMAT = b"credit/1:"
APART_FORMAT = b"credit/3:"


# The default of a state's map: Keyed never changes once built, so one serves all.
_NO_ORDERS: Keyed[tuple[str, Decimal]] = Keyed()


@dataclass(frozen=True, slots=True, init=False)
class CreditState:
    customer_id: str
    credit_limit: Decimal | None = None
    currency: str | None = None
    # order id -> (currency, exposure): the order's positive open balance, 0 when none.
    orders: Keyed[tuple[str, Decimal]] = field(default_factory=Keyed)
    breached: bool = False
    # The event ids of the customer's records. Not those of balance.changed: each states an
    # order's whole balance, so applying one again changes nothing (as in suspense.py),
    # and a customer's state must not grow with every balance it ever had.
    applied: frozenset[str] = frozenset()
    # Exposure in `currency`, kept as each order changes, to compare with the limit on
    # every event; the events themselves state `exposure(state)`, summed afresh.
    running: Decimal = ZERO

    # Written out, not generated (init=False): see services/domain/native.py, "__init__".
    def __init__(
        self,
        customer_id: str,
        credit_limit: Decimal | None = None,
        currency: str | None = None,
        orders: Keyed[tuple[str, Decimal]] = _NO_ORDERS,
        breached: bool = False,
        applied: frozenset[str] = frozenset(),
        running: Decimal = ZERO,
    ) -> None:
        object.__setattr__(self, "customer_id", customer_id)
        object.__setattr__(self, "credit_limit", credit_limit)
        object.__setattr__(self, "currency", currency)
        object.__setattr__(self, "orders", orders)
        object.__setattr__(self, "breached", breached)
        object.__setattr__(self, "applied", applied)
        object.__setattr__(self, "running", running)


def new_state(customer_id: str) -> CreditState:
    return CreditState(customer_id)


def exposure(state: CreditState) -> Decimal:
    if state.currency is None:
        return ZERO
    currency = state.currency
    # Exact while the total has at most 28 digits (the context's precision), far beyond any
    # customer's exposure: so the order of the terms does not matter.
    amounts = (amount for cur, amount in state.orders.unordered_values() if cur == currency)
    return sum(amounts, ZERO)


def over_limit(state: CreditState) -> bool:
    return state.credit_limit is not None and state.running > state.credit_limit


def apply(state: CreditState, event: CloudEvent) -> tuple[CreditState, tuple[CloudEvent, ...]]:
    if event.id in state.applied:
        return state, ()
    updated = _record(state, event)
    if updated is state:
        return state, ()
    now_over = over_limit(updated)
    if now_over == state.breached:
        return updated, ()
    updated = evolve(updated, breached=now_over)
    return updated, (_crossing(state, updated, event, now_over),)


def _record(state: CreditState, event: CloudEvent) -> CreditState:
    if isinstance(event, ev.CustomerUpserted):
        customer = event.data
        return evolve(
            state,
            credit_limit=customer.credit_limit,
            currency=customer.currency,
            applied=state.applied | {event.id},
            running=exposure(evolve(state, currency=customer.currency)),
        )
    if isinstance(event, ev.BalanceChanged):
        d = event.data
        owed = ZERO if d.status == "cancelled" else max(d.open_balance, ZERO)
        before = state.orders.get(d.order_id)
        running = state.running
        if before is not None and before[0] == state.currency:
            running -= before[1]
        if owed:
            if before == (d.currency, owed) and str(before[1]) == str(owed):
                return state  # the same balance again (a copy, or a redelivery)
            orders = state.orders.set(d.order_id, (d.currency, owed))
            if d.currency == state.currency:
                running += owed
        else:
            if before is None:
                return state
            orders = state.orders.remove(d.order_id)  # keeps the state small: most get paid
        return evolve(state, orders=orders, running=running)
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
        exposure=exposure(evolve(after, currency=named.currency)),
        at=cause.time,
    )
    cls = ev.CreditLimitBreached if breached else ev.CreditLimitRestored
    return output(cls, data, cause, after.customer_id)


# credit/2: [customer, limit, currency, breached, [applied ids], [[order, currency, owed]…]]
# in key order; credit/1 (the dataclass as a JSON object, every balance id kept) still loads.
_DOCUMENT: TypeAdapter[tuple[Any, ...]] = TypeAdapter(
    tuple[
        str,
        Decimal | None,
        str | None,
        bool,
        tuple[str, ...],
        tuple[tuple[str, str, Decimal], ...],
    ]
)


def dump_state(state: CreditState) -> bytes:
    orders = [(order_id, cur, owed) for order_id, (cur, owed) in state.orders.sorted_items()]
    document = (
        state.customer_id,
        state.credit_limit,
        state.currency,
        state.breached,
        sorted(state.applied),
        orders,
    )
    return STATE_FORMAT + rows.dumps(document)


def load_state(raw: bytes) -> CreditState:
    if raw.startswith(LEGACY_FORMAT):
        # credit/1, as pydantic wrote the dataclass (a JSON object), read as a credit/2
        # document: pydantic cannot build the compiled dataclass itself (native.py). It
        # kept every balance.changed id with the customers' ids, which it cannot tell
        # apart: all are dropped, as balances are no longer remembered by id.
        old = orjson.loads(raw[len(LEGACY_FORMAT) :])
        rows_v1 = [[order_id, *entry] for order_id, entry in old.get("orders", {}).items()]
        customer_id, limit, currency, breached, _, legacy_orders = _DOCUMENT.validate_python(
            (
                old["customer_id"],
                old.get("credit_limit"),
                old.get("currency"),
                old.get("breached", False),
                (),
                rows_v1,
            )
        )
        entries = ((order_id, (cur, owed)) for order_id, cur, owed in legacy_orders)
        return _built(customer_id, limit, currency, breached, frozenset(), entries)
    if not raw.startswith(STATE_FORMAT):
        raise StateFormatError(
            f"the credit table holds state in another format than this version reads "
            f"({raw[:12]!r}…, expected {STATE_FORMAT!r} or {LEGACY_FORMAT!r}); start the "
            "worker with a new O2C_APP_ID to rebuild it from the input topics"
        )
    customer_id, limit, currency, breached, applied, orders = _DOCUMENT.validate_json(
        raw[len(STATE_FORMAT) :]
    )
    entries = ((order_id, (cur, owed)) for order_id, cur, owed in orders)
    return _built(customer_id, limit, currency, breached, frozenset(applied), entries)


# credit/3, the worker's: the credit/2 document without its orders, each order a record of
# its own ([currency, owed] under the order id; see services/runtime/store.py, Entries), so
# a balance.changed writes one order, not the customer's thousands.


def dump_head(state: CreditState) -> bytes:
    document: tuple[Any, ...] = (
        state.customer_id,
        state.credit_limit,
        state.currency,
        state.breached,
        sorted(state.applied),
        [],
    )
    return APART_FORMAT + rows.dumps(document)


def changed_orders(
    before: CreditState | None, after: CreditState
) -> list[tuple[str, bytes | None]]:
    """The orders' records to write (None: to delete) once `before` became `after`."""
    changed = changed_entries(None if before is None else before.orders, after.orders)
    return [(order_id, None if v is None else rows.dumps(v)) for order_id, v in changed]


def stored_apart(head: bytes) -> bool:
    return head.startswith(APART_FORMAT)


def load_apart(head: bytes, orders: Iterable[tuple[str, bytes]]) -> CreditState:
    """A state from its head and its orders' records; a head of an older format holds its
    orders itself (and has no records)."""
    if not stored_apart(head):
        return load_state(head)
    customer_id, limit, currency, breached, applied, _ = _DOCUMENT.validate_json(
        head[len(APART_FORMAT) :]
    )
    pairs = list(orders)
    ids = [order_id for order_id, _ in pairs]
    records = b",".join(raw for _, raw in pairs)
    values = _ORDERS.validate_json(b"[" + records + b"]")  # one call for them all
    entries = zip(ids, values, strict=True)
    return _built(customer_id, limit, currency, breached, frozenset(applied), entries)


_ORDERS: TypeAdapter[tuple[tuple[str, Decimal], ...]] = TypeAdapter(tuple[tuple[str, Decimal], ...])


def _built(
    customer_id: str,
    limit: Decimal | None,
    currency: str | None,
    breached: bool,
    applied: frozenset[str],
    entries: Iterable[tuple[str, tuple[str, Decimal]]],
) -> CreditState:
    state = CreditState(customer_id, limit, currency, Keyed(entries), breached, applied)
    return evolve(state, running=exposure(state))
