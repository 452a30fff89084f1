"""Every event type of the contract (../shared/o2c-contract.md) as a frozen pydantic model.

Each event class is the whole CloudEvents envelope; its `data` model carries the fields.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from schemas.base import CloudEvent, EventData, Identifier, Model, Text, Timestamp
from schemas.money import Amount, CurrencyCode, SignedAmount

# --- shared field types ---------------------------------------------------------------


def _confidence_range(value: Decimal) -> Decimal:
    if not Decimal(0) <= value <= Decimal(1):
        raise ValueError(f"confidence must be between 0 and 1, got {value}")
    return value


Confidence = Annotated[Amount, AfterValidator(_confidence_range)]
Channel = Annotated[str, Field(min_length=1, max_length=40)]
PaymentMethod = Annotated[str, Field(min_length=1, max_length=40)]
TermsDays = Annotated[int, Field(ge=0, le=3650)]


class ReasonCode(StrEnum):
    UNDERPAID = "UNDERPAID"
    OVERPAID = "OVERPAID"
    DUPLICATE_PAYMENT = "DUPLICATE_PAYMENT"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    PAYMENT_WITHOUT_ORDER = "PAYMENT_WITHOUT_ORDER"
    PAYMENT_ON_CANCELLED_ORDER = "PAYMENT_ON_CANCELLED_ORDER"
    REFUND_EXCEEDS_PAID = "REFUND_EXCEEDS_PAID"
    CHARGEBACK = "CHARGEBACK"
    PAYOUT_AMOUNT_MISMATCH = "PAYOUT_AMOUNT_MISMATCH"
    PAYOUT_NOT_IN_BANK = "PAYOUT_NOT_IN_BANK"
    PAYMENT_NOT_SETTLED = "PAYMENT_NOT_SETTLED"
    FEE_MISMATCH = "FEE_MISMATCH"
    UNMATCHED_BANK_LINE = "UNMATCHED_BANK_LINE"
    AMBIGUOUS_BANK_LINE = "AMBIGUOUS_BANK_LINE"
    INVOICE_ORDER_MISMATCH = "INVOICE_ORDER_MISMATCH"


Severity = Literal["low", "medium", "high"]
OrderStatus = Literal[
    "open", "partially_paid", "paid", "settled", "overpaid", "cancelled", "written_off"
]


# --- input facts ----------------------------------------------------------------------


class CustomerUpsertedData(EventData):
    money_fields = ("credit_limit",)
    # Names are how payers are recognised (masked the same way on both sides, so names
    # still compare); bank_accounts are looked up as sent (masked only on display).
    free_text_fields = ("name", "region", "segment", "payer_names")
    kept_text_fields = ("currency", "bank_accounts")
    customer_id: Identifier
    name: Text
    credit_limit: Amount | None = None
    currency: CurrencyCode | None = None
    payment_terms_days: TermsDays = 0
    region: str | None = None
    segment: str | None = None
    bank_accounts: tuple[str, ...] = ()
    payer_names: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _limit_needs_currency(self) -> Self:
        if self.credit_limit is not None and self.currency is None:
            raise ValueError("currency is required when credit_limit is given")
        return self


class OrderLine(Model):
    sku: Identifier
    quantity: Annotated[Decimal, Field(gt=0)]
    unit_price: Amount


class OrderPlacedData(EventData):
    money_fields = ("total_amount",)
    free_text_fields = ("region",)
    kept_text_fields = ("channel", "currency")  # codes that policies and reports group by
    order_id: Identifier
    customer_id: Identifier
    channel: Channel
    currency: CurrencyCode
    total_amount: Amount
    placed_at: Timestamp
    payment_terms_days: TermsDays | None = None
    region: str | None = None
    lines: tuple[OrderLine, ...] = ()


class OrderAmendedData(EventData):
    money_fields = ("total_amount",)
    free_text_fields = ("reason",)
    kept_text_fields = ("currency",)
    order_id: Identifier
    total_amount: Amount
    # Optional addition to the contract: lets the edge check the decimals of total_amount.
    currency: CurrencyCode | None = None
    reason: Text | None = None


class OrderCancelledData(EventData):
    free_text_fields = ("reason",)
    order_id: Identifier
    reason: Text | None = None


class InvoiceIssuedData(EventData):
    money_fields = ("amount",)
    kept_text_fields = ("currency",)
    invoice_id: Identifier
    order_id: Identifier
    customer_id: Identifier
    amount: Amount
    currency: CurrencyCode
    issued_at: Timestamp
    due_date: date


class CreditNoteIssuedData(EventData):
    money_fields = ("amount",)
    kept_text_fields = ("currency",)
    credit_note_id: Identifier
    invoice_id: Identifier
    order_id: Identifier
    amount: Amount
    currency: CurrencyCode
    issued_at: Timestamp


class PaymentCapturedData(EventData):
    money_fields = ("amount", "fee_amount")
    # The reference is searched for order ids: a number a reference pattern takes is kept.
    free_text_fields = ("reference",)
    kept_text_fields = ("method", "provider", "currency")
    payment_id: Identifier
    order_id: Identifier | None = None
    customer_id: Identifier | None = None
    method: PaymentMethod
    provider: str | None = None
    amount: Amount
    currency: CurrencyCode
    fee_amount: Amount | None = None
    captured_at: Timestamp
    reference: Text | None = None


class PaymentReversedData(EventData):
    money_fields = ("amount",)
    free_text_fields = ("reason",)
    kept_text_fields = ("currency",)
    payment_id: Identifier
    order_id: Identifier | None = None
    amount: Amount
    currency: CurrencyCode
    reason: Text | None = None


class RefundIssuedData(EventData):
    money_fields = ("amount",)
    kept_text_fields = ("currency",)
    refund_id: Identifier
    order_id: Identifier
    payment_id: Identifier | None = None
    amount: Amount
    currency: CurrencyCode
    issued_at: Timestamp


class ChargebackOpenedData(EventData):
    money_fields = ("amount",)
    kept_text_fields = ("currency",)
    chargeback_id: Identifier
    payment_id: Identifier
    order_id: Identifier
    amount: Amount
    currency: CurrencyCode
    opened_at: Timestamp


class ChargebackResolvedData(EventData):
    chargeback_id: Identifier
    order_id: Identifier
    outcome: Literal["won", "lost"]


class PayoutItem(Model):
    payment_id: Identifier
    order_id: Identifier | None = None
    kind: Literal["charge", "refund", "chargeback", "adjustment"]
    gross: SignedAmount
    fee: SignedAmount


class PayoutReportedData(EventData):
    money_fields = ("gross_amount", "fee_amount", "net_amount", "items[].gross", "items[].fee")
    kept_text_fields = ("currency",)
    payout_id: Identifier
    provider: Identifier
    currency: CurrencyCode
    gross_amount: SignedAmount
    fee_amount: SignedAmount
    net_amount: SignedAmount
    payout_date: date
    items: tuple[PayoutItem, ...]


class BankLineBookedData(EventData):
    money_fields = ("amount",)
    # remittance_info is searched for payout, order and invoice ids: a number a reference
    # pattern takes there is kept. end_to_end_id and bank_reference are references the
    # payer's and our bank assign (searched too, kept); counterparty_account is looked up
    # as sent, to find the payer (masked only on display).
    free_text_fields = ("counterparty_name", "remittance_info")
    kept_text_fields = ("currency", "counterparty_account", "end_to_end_id", "bank_reference")
    line_id: Identifier
    account_id: Identifier
    booking_date: date
    value_date: date | None = None
    amount: SignedAmount
    currency: CurrencyCode
    counterparty_name: Text | None = None
    counterparty_account: str | None = None
    remittance_info: Text | None = None
    end_to_end_id: str | None = None
    bank_reference: str | None = None


class DayClosedData(EventData):
    date: date


# --- outputs --------------------------------------------------------------------------


class OrderMatchedData(EventData):
    money_fields = ("receivable", "paid", "refunded", "settled", "written_off")
    order_id: Identifier
    customer_id: Identifier
    currency: CurrencyCode
    receivable: SignedAmount  # negative when credit notes exceed invoices
    paid: SignedAmount
    refunded: Amount
    settled: SignedAmount  # payouts net refunds and chargebacks against charges
    written_off: SignedAmount


class BalanceChangedData(EventData):
    money_fields = ("receivable", "paid", "refunded", "settled", "open_balance")
    free_text_fields = ("region",)  # the order's, copied
    order_id: Identifier
    customer_id: Identifier | None = None
    currency: CurrencyCode
    receivable: SignedAmount  # negative when credit notes exceed invoices
    paid: SignedAmount
    refunded: Amount
    settled: SignedAmount  # payouts net refunds and chargebacks against charges
    open_balance: SignedAmount
    status: OrderStatus
    due_date: date | None = None
    channel: str | None = None
    region: str | None = None


class PaymentAppliedData(EventData):
    money_fields = ("amount",)
    payment_id: Identifier | None = None
    line_id: Identifier | None = None
    order_id: Identifier
    amount: Amount
    currency: CurrencyCode
    method: Literal["reference", "exact_amount", "combination", "manual"]
    confidence: Confidence
    # Optional addition: the person who applied it by hand (method "manual").
    by: Identifier | None = None
    # Optional addition: the customer whose suspense held the line; set by manual
    # applications of a suspended line, so that a copy reaches that suspense account.
    customer_id: Identifier | None = None


class PaymentSettledData(EventData):
    money_fields = ("amount", "fee")
    payment_id: Identifier
    order_id: Identifier
    payout_id: Identifier | None = None
    line_id: Identifier
    amount: SignedAmount
    currency: CurrencyCode
    # Optional addition: the fee the PSP kept on this item, checked against the capture's.
    fee: SignedAmount | None = None


class WriteoffAppliedData(EventData):
    money_fields = ("amount",)
    free_text_fields = ("reason",)
    order_id: Identifier
    amount: SignedAmount
    currency: CurrencyCode
    reason: Text


class PayoutMatchedData(EventData):
    money_fields = ("net_amount",)
    payout_id: Identifier
    line_id: Identifier
    net_amount: SignedAmount
    currency: CurrencyCode


class Suggestion(Model):
    order_ids: tuple[Identifier, ...]
    amount: SignedAmount
    method: Literal["reference", "exact_amount", "combination", "manual"]
    confidence: Confidence


class MismatchDetectedData(EventData):
    money_fields = ("expected", "actual", "difference")
    mismatch_id: Identifier
    reason: ReasonCode
    severity: Severity
    currency: CurrencyCode
    expected: SignedAmount | None = None
    actual: SignedAmount | None = None
    difference: SignedAmount | None = None
    order_id: Identifier | None = None
    payment_id: Identifier | None = None
    payout_id: Identifier | None = None
    line_id: Identifier | None = None
    customer_id: Identifier | None = None
    detected_at: Timestamp
    suggestions: tuple[Suggestion, ...] = ()


class MismatchResolvedData(EventData):
    free_text_fields = ("note",)  # typed by a person resolving it by hand
    mismatch_id: Identifier
    resolution: Literal["auto", "manual"]
    note: Text | None = None
    # Optional additions: the same key the detection carried, so both land on one partition.
    reason: ReasonCode | None = None
    order_id: Identifier | None = None
    payment_id: Identifier | None = None
    payout_id: Identifier | None = None
    line_id: Identifier | None = None
    customer_id: Identifier | None = None
    resolved_at: Timestamp | None = None
    # Optional addition: the person who resolved it by hand (resolution "manual").
    by: Identifier | None = None


class MismatchAssignedData(EventData):
    """A person took a mismatch on; carries the detection's key fields (same partition)."""

    free_text_fields = ("note",)

    mismatch_id: Identifier
    assignee: Identifier
    note: Text | None = None
    order_id: Identifier | None = None
    payment_id: Identifier | None = None
    payout_id: Identifier | None = None
    line_id: Identifier | None = None
    customer_id: Identifier | None = None
    assigned_at: Timestamp
    # Optional addition: the person who made the assignment (the assignee or another).
    by: Identifier | None = None


class DsoTargetExceededData(EventData):
    """Days sales outstanding of a closed business day above target x 1.1 (the alert line)."""

    money_fields = ("receivables", "credit_sales")
    date: date
    currency: CurrencyCode
    dso_days: Amount  # days, with two decimals
    target_days: Amount
    alert_days: Amount
    receivables: SignedAmount
    credit_sales: SignedAmount


class CreditLimitData(EventData):
    money_fields = ("credit_limit", "exposure")
    customer_id: Identifier
    currency: CurrencyCode
    credit_limit: Amount
    exposure: SignedAmount
    at: Timestamp


class EventRejectedData(EventData):
    original_topic: str
    partition: Annotated[int, Field(ge=0, le=2**31 - 1)]  # Kafka's int32
    offset: Annotated[int, Field(ge=0, le=2**63 - 1)]  # Kafka's int64
    original_key: str | None = None
    original_value: str  # base64 of the original message bytes
    error: str
    rejected_at: Timestamp


# --- envelopes ------------------------------------------------------------------------

_ORDER_KEY = ("order_id",)


class CustomerUpserted(CloudEvent):
    key_fields = ("customer_id",)
    type: Literal["o2c.customer.upserted.v1"]
    data: CustomerUpsertedData


class OrderPlaced(CloudEvent):
    key_fields = _ORDER_KEY
    type: Literal["o2c.order.placed.v1"]
    data: OrderPlacedData


class OrderAmended(CloudEvent):
    key_fields = _ORDER_KEY
    type: Literal["o2c.order.amended.v1"]
    data: OrderAmendedData


class OrderCancelled(CloudEvent):
    key_fields = _ORDER_KEY
    type: Literal["o2c.order.cancelled.v1"]
    data: OrderCancelledData


class InvoiceIssued(CloudEvent):
    key_fields = _ORDER_KEY
    type: Literal["o2c.invoice.issued.v1"]
    data: InvoiceIssuedData


class CreditNoteIssued(CloudEvent):
    key_fields = _ORDER_KEY
    type: Literal["o2c.credit_note.issued.v1"]
    data: CreditNoteIssuedData


class PaymentCaptured(CloudEvent):
    key_fields = ("order_id", "payment_id")
    type: Literal["o2c.payment.captured.v1"]
    data: PaymentCapturedData


class PaymentReversed(CloudEvent):
    key_fields = ("order_id", "payment_id")
    type: Literal["o2c.payment.reversed.v1"]
    data: PaymentReversedData


class RefundIssued(CloudEvent):
    key_fields = _ORDER_KEY
    type: Literal["o2c.refund.issued.v1"]
    data: RefundIssuedData


class ChargebackOpened(CloudEvent):
    key_fields = _ORDER_KEY
    type: Literal["o2c.chargeback.opened.v1"]
    data: ChargebackOpenedData


class ChargebackResolved(CloudEvent):
    key_fields = _ORDER_KEY
    type: Literal["o2c.chargeback.resolved.v1"]
    data: ChargebackResolvedData


class PayoutReported(CloudEvent):
    key_fields = ("payout_id",)
    type: Literal["o2c.payout.reported.v1"]
    data: PayoutReportedData


class BankLineBooked(CloudEvent):
    key_fields = ("account_id",)
    type: Literal["o2c.bank_line.booked.v1"]
    data: BankLineBookedData


class DayClosed(CloudEvent):
    type: Literal["o2c.day.closed.v1"]
    data: DayClosedData


class OrderMatched(CloudEvent):
    key_fields = _ORDER_KEY
    type: Literal["o2c.order.matched.v1"]
    data: OrderMatchedData


class BalanceChanged(CloudEvent):
    key_fields = _ORDER_KEY
    type: Literal["o2c.balance.changed.v1"]
    data: BalanceChangedData


class PaymentApplied(CloudEvent):
    key_fields = _ORDER_KEY
    type: Literal["o2c.payment.applied.v1"]
    data: PaymentAppliedData


class PaymentSettled(CloudEvent):
    key_fields = _ORDER_KEY
    type: Literal["o2c.payment.settled.v1"]
    data: PaymentSettledData


class WriteoffApplied(CloudEvent):
    key_fields = _ORDER_KEY
    type: Literal["o2c.writeoff.applied.v1"]
    data: WriteoffAppliedData


class PayoutMatched(CloudEvent):
    key_fields = ("payout_id",)
    type: Literal["o2c.payout.matched.v1"]
    data: PayoutMatchedData


_MISMATCH_KEY = ("order_id", "payout_id", "line_id", "payment_id", "customer_id", "mismatch_id")


class MismatchDetected(CloudEvent):
    key_fields = _MISMATCH_KEY
    type: Literal["o2c.mismatch.detected.v1"]
    data: MismatchDetectedData


class MismatchResolved(CloudEvent):
    key_fields = _MISMATCH_KEY
    type: Literal["o2c.mismatch.resolved.v1"]
    data: MismatchResolvedData


class MismatchAssigned(CloudEvent):
    key_fields = _MISMATCH_KEY
    type: Literal["o2c.mismatch.assigned.v1"]
    data: MismatchAssignedData


class DsoTargetExceeded(CloudEvent):
    key_fields = ("currency",)
    type: Literal["o2c.dso.target_exceeded.v1"]
    data: DsoTargetExceededData


class CreditLimitBreached(CloudEvent):
    key_fields = ("customer_id",)
    type: Literal["o2c.credit_limit.breached.v1"]
    data: CreditLimitData


class CreditLimitRestored(CloudEvent):
    key_fields = ("customer_id",)
    type: Literal["o2c.credit_limit.restored.v1"]
    data: CreditLimitData


class EventRejected(CloudEvent):
    type: Literal["o2c.event.rejected.v1"]
    data: EventRejectedData

    def partition_key(self) -> str | None:
        return self.data.original_key


INPUT_EVENTS: tuple[type[CloudEvent], ...] = (
    CustomerUpserted,
    OrderPlaced,
    OrderAmended,
    OrderCancelled,
    InvoiceIssued,
    CreditNoteIssued,
    PaymentCaptured,
    PaymentReversed,
    RefundIssued,
    ChargebackOpened,
    ChargebackResolved,
    PayoutReported,
    BankLineBooked,
    DayClosed,
)
OUTPUT_EVENTS: tuple[type[CloudEvent], ...] = (
    OrderMatched,
    BalanceChanged,
    PaymentApplied,
    PaymentSettled,
    WriteoffApplied,
    PayoutMatched,
    MismatchDetected,
    MismatchResolved,
    MismatchAssigned,
    CreditLimitBreached,
    CreditLimitRestored,
    DsoTargetExceeded,
    EventRejected,
)
ALL_EVENTS = INPUT_EVENTS + OUTPUT_EVENTS


def type_name(event_class: type[CloudEvent]) -> str:
    """The CloudEvents `type` string an event class carries, e.g. "o2c.order.placed.v1"."""
    annotation = event_class.model_fields["type"].annotation
    (value,) = annotation.__args__  # type: ignore[union-attr]
    return str(value)


EVENT_CLASS_BY_TYPE: dict[str, type[CloudEvent]] = {type_name(c): c for c in ALL_EVENTS}

AnyEvent = Annotated[
    CustomerUpserted
    | OrderPlaced
    | OrderAmended
    | OrderCancelled
    | InvoiceIssued
    | CreditNoteIssued
    | PaymentCaptured
    | PaymentReversed
    | RefundIssued
    | ChargebackOpened
    | ChargebackResolved
    | PayoutReported
    | BankLineBooked
    | DayClosed
    | OrderMatched
    | BalanceChanged
    | PaymentApplied
    | PaymentSettled
    | WriteoffApplied
    | PayoutMatched
    | MismatchDetected
    | MismatchResolved
    | MismatchAssigned
    | CreditLimitBreached
    | CreditLimitRestored
    | DsoTargetExceeded
    | EventRejected,
    Field(discriminator="type"),
]
