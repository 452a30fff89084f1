"""The one registry of Kafka topics: name, key, value types and settings.

Every producer, consumer, CLI command and test takes topic names from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.events import type_name

ORDER_KEYED_PARTITIONS = 12

# Inputs accept messages above the 1 MiB event limit so that the edge, not the broker,
# rejects an oversize event: it then reaches the dead-letter topic with its bytes and a
# reason, instead of failing in the upstream producer. A dead letter carries those bytes
# in base64 (4/3 larger) plus its envelope.
INPUT_MAX_MESSAGE_BYTES = 2 * 1024 * 1024
OUTPUT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class Role(StrEnum):
    INPUT = "input"  # facts published by upstream systems; kept forever
    OUTPUT = "output"  # written only by o2c-matcher
    INTERNAL = "internal"  # repartition and fan-out topics between processors


@dataclass(frozen=True)
class Topic:
    name: str
    key: str  # the contract's description of the message key
    value_types: tuple[type[CloudEvent], ...]
    role: Role
    partitions: int = ORDER_KEYED_PARTITIONS
    retention_ms: int | None = None  # None: broker default; -1: forever
    compacted: bool = False
    # How long a compacted topic keeps a deletion (tombstone) readable: None: broker default.
    delete_retention_ms: int | None = None
    max_message_bytes: int | None = None
    # True for a repartition topic whose message key is not the event's own key field
    # (a bank line keyed by the payout it names); the edge then skips that check.
    rekeyed: bool = False

    @cached_property  # asked for every message at the edge
    def type_names(self) -> tuple[str, ...]:
        return tuple(type_name(t) for t in self.value_types)

    def config(self) -> dict[str, str]:
        settings: dict[str, str] = {}
        if self.compacted:
            settings["cleanup.policy"] = "compact"
        if self.retention_ms is not None:
            settings["retention.ms"] = str(self.retention_ms)
        if self.delete_retention_ms is not None:
            settings["delete.retention.ms"] = str(self.delete_retention_ms)
        limit = self.max_message_bytes or (
            INPUT_MAX_MESSAGE_BYTES if self.role is Role.INPUT else OUTPUT_MAX_MESSAGE_BYTES
        )
        settings["max.message.bytes"] = str(limit)
        return settings


_FOREVER = -1

CUSTOMERS = Topic(
    "o2c.customers",
    "customer_id",
    (ev.CustomerUpserted,),
    Role.INPUT,
    compacted=True,
)
ORDERS = Topic(
    "o2c.orders",
    "order_id",
    (ev.OrderPlaced, ev.OrderAmended, ev.OrderCancelled),
    Role.INPUT,
    retention_ms=_FOREVER,
)
INVOICES = Topic(
    "o2c.invoices",
    "order_id",
    (ev.InvoiceIssued, ev.CreditNoteIssued),
    Role.INPUT,
    retention_ms=_FOREVER,
)
PAYMENTS = Topic(
    "o2c.payments",
    "order_id, else payment_id",
    (ev.PaymentCaptured, ev.PaymentReversed),
    Role.INPUT,
    retention_ms=_FOREVER,
)
REFUNDS = Topic(
    "o2c.refunds",
    "order_id",
    (ev.RefundIssued, ev.ChargebackOpened, ev.ChargebackResolved),
    Role.INPUT,
    retention_ms=_FOREVER,
)
SETTLEMENTS = Topic(
    "o2c.settlements", "payout_id", (ev.PayoutReported,), Role.INPUT, retention_ms=_FOREVER
)
BANK_LINES = Topic(
    "o2c.bank-lines", "account_id", (ev.BankLineBooked,), Role.INPUT, retention_ms=_FOREVER
)
CLOCK = Topic("o2c.clock", "none", (ev.DayClosed,), Role.INPUT, partitions=1, retention_ms=_FOREVER)

MATCHES = Topic(
    "o2c.matches",
    "order_id (payout_id for payout events)",
    (
        ev.OrderMatched,
        ev.PaymentApplied,
        ev.PaymentSettled,
        ev.WriteoffApplied,
        ev.BalanceChanged,
        ev.PayoutMatched,
    ),
    Role.OUTPUT,
    retention_ms=_FOREVER,
)
MISMATCHES = Topic(
    "o2c.mismatches",
    "the key of the thing that is wrong",
    (ev.MismatchDetected, ev.MismatchResolved, ev.MismatchAssigned),
    Role.OUTPUT,
    retention_ms=_FOREVER,
)
CREDIT = Topic(
    "o2c.credit",
    "customer_id",
    (ev.CreditLimitBreached, ev.CreditLimitRestored),
    Role.OUTPUT,
    retention_ms=_FOREVER,
)
# Alerts computed on the read side (DSO above target), one partition per currency key.
ALERTS = Topic(
    "o2c.alerts",
    "currency",
    (ev.DsoTargetExceeded,),
    Role.OUTPUT,
    retention_ms=_FOREVER,
)
DEAD_LETTER = Topic(
    "o2c.dead-letter",
    "original key",
    (ev.EventRejected,),
    Role.OUTPUT,
    partitions=1,
    retention_ms=_FOREVER,
)

# Time arrives once on o2c.clock; this copy carries it to every partition of every
# stateful processor, because a keyed table only sees messages of its own partitions.
CLOCK_FANOUT = Topic(
    "o2c.internal.clock-fanout",
    "partition number",
    (ev.DayClosed,),
    Role.INTERNAL,
    retention_ms=_FOREVER,
)

# Payments that named no order but whose reference does, re-keyed by that order id so that
# they reach the partition of its ledger.
PAYMENTS_BY_ORDER = Topic(
    "o2c.internal.payments-by-order",
    "order_id",
    (ev.PaymentCaptured, ev.PaymentReversed),
    Role.INTERNAL,
    retention_ms=_FOREVER,
)

# The outputs of the settlement processors that the ledger records, copied here: on
# o2c.matches they are a fraction of a topic mostly filled by the ledger's own outputs,
# which the ledger would otherwise have to read and skip.
LEDGER_FACTS = Topic(
    "o2c.internal.ledger-facts",
    "order_id",
    (ev.PaymentSettled, ev.PaymentApplied),
    Role.INTERNAL,
    retention_ms=_FOREVER,
)
# Bank lines that name a payout, keyed by its payout id, for the payout processor.
BANK_LINES_BY_PAYOUT = Topic(
    "o2c.internal.bank-lines-by-payout",
    "payout_id",
    (ev.BankLineBooked,),
    Role.INTERNAL,
    retention_ms=_FOREVER,
    rekeyed=True,
)
# Bank lines that name nothing, keyed by the customer their payer resolved to; and a copy
# of each manual payment.applied of such a line (it names the customer), so the suspense
# account lets go of a line a person applied. On the line's own topic, the copy comes
# after the line it applies, and ranks before the balance.changed it causes (same time).
BANK_LINES_BY_CUSTOMER = Topic(
    "o2c.internal.bank-lines-by-customer",
    "customer_id",
    (ev.BankLineBooked, ev.PaymentApplied),
    Role.INTERNAL,
    retention_ms=_FOREVER,
    rekeyed=True,
)
# balance.changed is keyed by order id; the suspense processor (open items) and the credit
# processor (exposure) need all of a customer's balances on one partition. Every writer of
# a balance.changed puts this copy beside it (COPIES below).
BALANCES_BY_CUSTOMER = Topic(
    "o2c.internal.balances-by-customer",
    "customer_id",
    (ev.BalanceChanged,),
    Role.INTERNAL,
    retention_ms=_FOREVER,
    rekeyed=True,
)
# Bank lines that name an invoice number, and the invoices issued, keyed by invoice id:
# the invoice-reference processor joins them to find the order a line pays.
BANK_LINES_BY_INVOICE = Topic(
    "o2c.internal.bank-lines-by-invoice",
    "invoice_id",
    (ev.BankLineBooked,),
    Role.INTERNAL,
    retention_ms=_FOREVER,
    rekeyed=True,
)
INVOICES_BY_NUMBER = Topic(
    "o2c.internal.invoices-by-number",
    "invoice_id",
    (ev.InvoiceIssued,),
    Role.INTERNAL,
    retention_ms=_FOREVER,
    rekeyed=True,
)

ALL_TOPICS: tuple[Topic, ...] = (
    CUSTOMERS,
    ORDERS,
    INVOICES,
    PAYMENTS,
    REFUNDS,
    SETTLEMENTS,
    BANK_LINES,
    CLOCK,
    MATCHES,
    MISMATCHES,
    CREDIT,
    ALERTS,
    DEAD_LETTER,
    CLOCK_FANOUT,
    PAYMENTS_BY_ORDER,
    LEDGER_FACTS,
    BANK_LINES_BY_PAYOUT,
    BANK_LINES_BY_CUSTOMER,
    BALANCES_BY_CUSTOMER,
    BANK_LINES_BY_INVOICE,
    INVOICES_BY_NUMBER,
)
TOPICS_BY_NAME: dict[str, Topic] = {t.name: t for t in ALL_TOPICS}

# Where each event type is published. Internal topics carry copies, so they are not homes.
HOME_TOPIC: dict[str, Topic] = {
    name: topic
    for topic in ALL_TOPICS
    if topic.role is not Role.INTERNAL
    for name in topic.type_names
}


def topic_for(event: CloudEvent) -> Topic:
    return HOME_TOPIC[event.type]


@dataclass(frozen=True)
class Copy:
    """An internal copy every writer of an event type makes beside its home topic."""

    topic: Topic
    key_field: str | None = None  # the data field keying the copy; None: the event's key


COPIES: dict[str, tuple[Copy, ...]] = {
    **dict.fromkeys(LEDGER_FACTS.type_names, (Copy(LEDGER_FACTS),)),
    **dict.fromkeys(BALANCES_BY_CUSTOMER.type_names, (Copy(BALANCES_BY_CUSTOMER, "customer_id"),)),
    # Only a manual application names a customer: the processors' own carry none, so the
    # suspense processor never reads its own applications back.
    type_name(ev.PaymentApplied): (Copy(LEDGER_FACTS), Copy(BANK_LINES_BY_CUSTOMER, "customer_id")),
}


def destinations(event: CloudEvent) -> list[tuple[Topic, str | None]]:
    """(topic, key) for each place a writer publishes `event`: its home topic with the
    contract's key, then its internal copies (a copy whose key field is empty is skipped)."""
    places: list[tuple[Topic, str | None]] = [(HOME_TOPIC[event.type], event.partition_key())]
    for copy in COPIES.get(event.type, ()):
        if copy.key_field is None:
            places.append((copy.topic, event.partition_key()))
        elif key := getattr(event.data, copy.key_field, None):
            places.append((copy.topic, str(key)))
    return places


def by_name(name: str) -> Topic:
    try:
        return TOPICS_BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(TOPICS_BY_NAME))
        raise KeyError(f"unknown topic {name!r}; known topics: {known}") from None


# Everything o2c-matcher writes: outputs and the internal copies between its processors.
OUTPUT_TOPICS: tuple[Topic, ...] = tuple(t for t in ALL_TOPICS if t.role is not Role.INPUT)


# --- topics of one application id (a deployment of workers), named after it ----------------


def rerouted_topic(app_id: str, partitions: int = ORDER_KEYED_PARTITIONS) -> Topic:
    """Input records a producer put on another partition than murmur2(key)'s (librdkafka's
    default partitioner, an explicit partition), moved to their task's partition with their
    original topic in a header: a wrong partitioner costs a hop, never a wrong answer.
    Copies only until handled (the input topic stays the truth), so kept a week."""
    return Topic(
        f"{app_id}-rerouted",
        "the original key",
        (),
        Role.INTERNAL,
        partitions=partitions,
        retention_ms=7 * 24 * 3600 * 1000,
    )


# A store's open items are deleted one record at a time (a tombstone each). Compaction
# drops a tombstone once it is this old, so a local state checkpointed longer ago than
# this may miss deletions in the changelog's tail: the runtime then restores it anew.
CHANGELOG_TOMBSTONE_RETENTION_MS = 7 * 24 * 3600 * 1000


def changelog_topic(app_id: str, store: str, partitions: int = ORDER_KEYED_PARTITIONS) -> Topic:
    """The compacted changelog of a state store: partition p holds task p's state."""
    return Topic(
        f"{app_id}-{store}-changelog",
        "the store's key",
        (),
        Role.INTERNAL,
        partitions=partitions,
        compacted=True,
        delete_retention_ms=CHANGELOG_TOMBSTONE_RETENTION_MS,
    )
