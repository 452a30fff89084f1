"""The ledger processor: the shell around `services.domain.matching.apply`.

One store of ledgers keyed by order id (or by payment id for a payment that names no order
we can find), co-partitioned with every order-keyed input; per task the store also holds
the last business day closed, under a key no order id can take.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from schemas.base import CloudEvent
from schemas.codec import encode
from schemas.topics import (
    CLOCK_FANOUT,
    INVOICES,
    LEDGER_FACTS,
    ORDERS,
    PAYMENTS,
    PAYMENTS_BY_ORDER,
    REFUNDS,
)
from services import metrics
from services.domain import payment_routing
from services.domain.ledger import (
    Ledger,
    dump_state,
    load_state,
    new_ledger,
    stored_time_driven,
)
from services.domain.matching import apply, may_change_with_time
from services.domain.references import ReferencePatterns
from services.runtime.edge import RawMessage
from services.runtime.processor import ProcessorSpec, Task
from services.runtime.store import Codec, StoreSpec
from services.settings import Settings
from services.worker.keyed_processor import BOOKKEEPING, Core, Keyed

# In event-time ties, earlier inputs first: an order before a payment of the same instant.
LEDGER_INPUTS = (ORDERS, INVOICES, PAYMENTS, REFUNDS, LEDGER_FACTS, PAYMENTS_BY_ORDER, CLOCK_FANOUT)
# payment id -> the order its capture's reference named, so that a reversal naming only
# the payment follows the capture. Kept on the payment's own partition, where both arrive.
FORWARDED_PREFIX = BOOKKEEPING + b"forwarded/"


def ledger_spec(settings: Settings) -> ProcessorSpec[Ledger]:
    policy = settings.policy()
    references = ReferencePatterns(settings.reference_patterns)

    def dump(ledger: Ledger) -> bytes:
        return dump_state(ledger, time_driven=may_change_with_time(ledger, policy))

    def apply_event(
        ledger: Ledger, event: CloudEvent, _message: RawMessage, today: date | None
    ) -> tuple[Ledger, Sequence[CloudEvent]]:
        return apply(ledger, event, policy, today)

    def changes_with_time(ledger: Ledger | None, stored: bytes | None) -> bool:
        if ledger is not None:
            return may_change_with_time(ledger, policy)
        return stored is not None and stored_time_driven(stored)

    def forward(task: Task, message: RawMessage, event: CloudEvent) -> bool:
        return message.topic == PAYMENTS.name and forward_by_reference(task, event, references)

    core = Core(
        "ledger",
        new_ledger,
        apply_event,
        changes_with_time=changes_with_time,
        forward=forward,
        changed=track_open_balance,
        key_of=lambda _message, event: (event.partition_key() or "").encode(),
    )
    return ProcessorSpec(
        "ledger",
        LEDGER_INPUTS,
        StoreSpec("ledgers", Codec(load_state, dump)),
        lambda: Keyed(core),
    )


def forward_by_reference(task: Task, event: CloudEvent, references: ReferencePatterns) -> bool:
    """A payment that names no order, but whose reference does, goes to that order's
    partition through the repartition topic (services/domain/payment_routing.py); True
    when it was forwarded."""
    payment_id = payment_routing.names_a_payment(event)
    if payment_id is None:
        return False
    remembered_key = FORWARDED_PREFIX + payment_id.encode()
    remembered = task.store.get_raw(remembered_key)
    decided = payment_routing.forward(
        event, references, remembered.decode() if remembered else None
    )
    if decided is None:
        return False
    if decided.remember:
        task.store.put_raw(remembered_key, decided.order_id.encode())
    task.send_raw(
        PAYMENTS_BY_ORDER,
        decided.order_id,
        encode(decided.event),
        headers={"ce_type": event.type.encode()},
    )
    return True


def track_open_balance(before: Ledger, after: Ledger) -> None:
    old, new = before.reported, after.reported
    if new is None or after.order is None:
        return
    delta = new.open_balance - (old.open_balance if old else 0)
    if delta:
        metrics.OPEN_BALANCE.labels(new.currency).inc(float(delta))  # a gauge, not money
