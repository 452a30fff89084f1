"""The credit processor: the shell around `services.domain.credit.apply`.

balance.changed is keyed by order id, so every writer of one also puts a copy keyed by
customer id on o2c.internal.balances-by-customer (schemas/topics.py, COPIES); the credit
processor reads that topic with o2c.customers (both keyed by customer id, co-partitioned)
and keeps one `CreditState` per customer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import InvalidEvent
from schemas.topics import BALANCES_BY_CUSTOMER, CUSTOMERS
from services.domain import credit
from services.domain.credit import CreditState, apply, dump_state, load_state, new_state
from services.runtime.edge import RawMessage
from services.runtime.processor import ProcessorSpec
from services.runtime.store import Codec, Entries, StoreSpec
from services.worker.keyed_processor import Core, Keyed

CREDIT_INPUTS = (CUSTOMERS, BALANCES_BY_CUSTOMER)


def apply_event(
    state: CreditState, event: CloudEvent, message: RawMessage, _today: date | None
) -> tuple[CreditState, Sequence[CloudEvent]]:
    if message.topic == BALANCES_BY_CUSTOMER.name:
        # A balance.changed keyed by customer id here, not by its contract key (order id).
        key = (message.key or b"").decode("utf-8", "replace")
        if not isinstance(event, ev.BalanceChanged) or event.data.customer_id != key:
            raise InvalidEvent.single("key", f"not a balance.changed of customer {key!r}", event.id)
    if not isinstance(event, ev.CustomerUpserted | ev.BalanceChanged):
        return state, ()
    return apply(state, event)


# A customer's orders stored one record each: a balance.changed writes one order's record.
STORED_APART = Entries(
    credit.dump_head, credit.changed_orders, credit.load_apart, credit.stored_apart
)


def credit_spec() -> ProcessorSpec[CreditState]:
    core = Core("credit", new_state, apply_event, changes_with_time=lambda _s, _b: False)
    return ProcessorSpec(
        "credit",
        CREDIT_INPUTS,
        StoreSpec("credit", Codec(load_state, dump_state, STORED_APART)),
        lambda: Keyed(core),
    )
