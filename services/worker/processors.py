"""Every processor of the worker, in one table: what it reads, what it keeps, its shell.

processor           reads                                        keeps (store)
clock-fanout        o2c.clock                                    -
ledger              orders, invoices, payments, refunds,         ledgers (per order)
                    ledger-facts, payments-by-order, clock-fanout
credit              customers, balances-by-customer              credit (per customer)
bank-router         bank-lines                                   -
repartition         invoices                                     -
payouts             settlements, bank-lines-by-payout, clock      payouts (per payout)
suspense            bank-lines-by-customer, balances-by-customer  suspense (per customer)
invoice-references  invoices-by-number, bank-lines-by-invoice,   invoice_references
                    clock-fanout                                 (per invoice)
"""

from __future__ import annotations

from schemas.base import CloudEvent
from schemas.topics import CLOCK, CLOCK_FANOUT, Topic
from services import metrics
from services.runtime.edge import RawMessage
from services.runtime.processor import ProcessorSpec, Task
from services.settings import Settings
from services.worker.credit_processor import CREDIT_INPUTS, credit_spec
from services.worker.ledger_processor import LEDGER_INPUTS, ledger_spec
from services.worker.settlement_processors import (
    INVOICE_REFERENCE_INPUTS,
    PAYOUT_INPUTS,
    ROUTER_INPUTS,
    SUSPENSE_INPUTS,
    settlement_specs,
)


class ClockFanout:
    """Time arrives once on o2c.clock; every task of every stateful processor needs it."""

    def handle(self, task: Task, message: RawMessage, event: CloudEvent) -> None:
        metrics.EVENTS_IN.labels("clock", event.type).inc()
        # A redelivery repeats the fan-out; closing a day twice changes nothing.
        for partition in range(CLOCK_FANOUT.partitions):
            task.send_raw(
                CLOCK_FANOUT,
                None,
                message.value or b"",
                {"ce_type": event.type.encode()},
                partition=partition,
            )


def worker_specs(settings: Settings) -> list[ProcessorSpec[object]]:
    return [
        ProcessorSpec("clock-fanout", (CLOCK,), None, ClockFanout),
        ledger_spec(settings),  # type: ignore[list-item]
        credit_spec(),  # type: ignore[list-item]
        *settlement_specs(settings),
    ]


# Every topic the worker's consumer group reads: a new group must start at the end of all
# of them to see only new events (tests, benchmarks), and its lag is measured over them.
WORKER_INPUTS: tuple[Topic, ...] = tuple(
    dict.fromkeys(
        (
            CLOCK,
            *LEDGER_INPUTS,
            *CREDIT_INPUTS,
            *ROUTER_INPUTS,
            *PAYOUT_INPUTS,
            *SUSPENSE_INPUTS,
            *INVOICE_REFERENCE_INPUTS,
        )
    )
)
