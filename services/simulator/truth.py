"""The ground truth beside a simulated stream: what a correct matcher concludes at its end.

One JSON object per line, each with a `record` field:

- `expected_mismatch`: a mismatch that must be open after the last `day.closed` of the
  stream. `reason`, the ids named by `KEY_FIELDS[reason]` (the key it is compared by), and
  `cause`: the anomaly injected (a payout missing from the bank also leaves its payments
  unsettled: `reason` PAYMENT_NOT_SETTLED, `cause` PAYOUT_NOT_IN_BANK).
- `resolved_anomaly`: an anomaly injected together with the fact that clears it (a top-up,
  an amendment, a won dispute, a late payout); it must not be open at the end.
- `bank_line`: the expected application of every bank line. `expect` is `payout`
  (`payout_id`, `matched`: whether the amounts agree), `orders` (`applications`: order id
  and amount each, `method`: reference, exact_amount or combination), `ambiguous`
  (`candidates`: the order ids it could pay) or `unmatched`.
- `summary` (last line): the configuration, `first_day` and `last_day` closed, the number
  of events, and `injected`: anomalies injected per reason code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import orjson

from schemas.events import ReasonCode

R = ReasonCode

# The ids a mismatch of each reason is identified by, in the matcher's outputs and here.
KEY_FIELDS: Mapping[ReasonCode, tuple[str, ...]] = {
    R.UNDERPAID: ("order_id",),
    R.OVERPAID: ("order_id",),
    R.DUPLICATE_PAYMENT: ("order_id", "payment_id"),
    R.CURRENCY_MISMATCH: ("order_id", "payment_id"),
    R.PAYMENT_WITHOUT_ORDER: ("payment_id",),
    R.PAYMENT_ON_CANCELLED_ORDER: ("order_id",),
    R.REFUND_EXCEEDS_PAID: ("order_id",),
    R.CHARGEBACK: ("order_id", "payment_id"),
    R.PAYOUT_AMOUNT_MISMATCH: ("payout_id",),
    R.PAYOUT_NOT_IN_BANK: ("payout_id",),
    R.PAYMENT_NOT_SETTLED: ("order_id", "payment_id"),
    R.FEE_MISMATCH: ("payout_id", "payment_id"),
    R.UNMATCHED_BANK_LINE: ("line_id",),
    R.AMBIGUOUS_BANK_LINE: ("line_id",),
    R.INVOICE_ORDER_MISMATCH: ("order_id",),
}

MismatchKey = tuple[ReasonCode, tuple[str | None, ...]]


def mismatch_key(reason: ReasonCode | str, fields: Mapping[str, Any]) -> MismatchKey:
    code = ReasonCode(reason)
    return code, tuple(fields.get(name) for name in KEY_FIELDS[code])


class TruthWriter:
    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.injected: dict[str, int] = {r.value: 0 for r in ReasonCode}
        self.expected: dict[str, int] = {r.value: 0 for r in ReasonCode}

    def _write(self, record: dict[str, Any]) -> None:
        self.handle.write(orjson.dumps(record, default=_decimal) + b"\n")

    def injected_anomaly(self, reason: ReasonCode) -> None:
        self.injected[reason.value] += 1

    def expect(self, reason: ReasonCode, cause: ReasonCode, note: str, **ids: str | None) -> None:
        missing = [f for f in KEY_FIELDS[reason] if not ids.get(f)]
        assert not missing, f"{reason} needs {missing}"
        self.expected[reason.value] += 1
        self._write(
            {"record": "expected_mismatch", "reason": reason, "cause": cause, "note": note}
            | {k: v for k, v in ids.items() if v}
        )

    def resolved(self, reason: ReasonCode, note: str, **ids: str | None) -> None:
        self._write(
            {"record": "resolved_anomaly", "reason": reason, "note": note}
            | {k: v for k, v in ids.items() if v}
        )

    def payout_line(self, line_id: str, payout_id: str, *, matched: bool) -> None:
        self._write(
            {
                "record": "bank_line",
                "line_id": line_id,
                "expect": "payout",
                "payout_id": payout_id,
                "matched": matched,
            }
        )

    def order_line(
        self, line_id: str, method: str, applications: list[tuple[str, Decimal]]
    ) -> None:
        self._write(
            {
                "record": "bank_line",
                "line_id": line_id,
                "expect": "orders",
                "method": method,
                "applications": [{"order_id": o, "amount": a} for o, a in applications],
            }
        )

    def ambiguous_line(self, line_id: str, candidates: list[str]) -> None:
        self._write(
            {"record": "bank_line", "line_id": line_id, "expect": "ambiguous"}
            | {"candidates": candidates}
        )

    def unmatched_line(self, line_id: str) -> None:
        self._write({"record": "bank_line", "line_id": line_id, "expect": "unmatched"})

    def summary(self, **fields: Any) -> None:
        self._write(
            {"record": "summary"}
            | fields
            | {"injected": self.injected, "expected_open": self.expected}
        )


def _decimal(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot write {type(value).__name__} to the truth file")


@dataclass(frozen=True)
class Truth:
    expected: frozenset[MismatchKey]
    resolved: tuple[dict[str, Any], ...]
    bank_lines: Mapping[str, dict[str, Any]]
    summary: Mapping[str, Any]
    records: tuple[dict[str, Any], ...]  # expected_mismatch records, as written


def records(path: str | Path) -> Iterator[dict[str, Any]]:
    with Path(path).open("rb") as handle:
        for line in handle:
            if line.strip():
                yield orjson.loads(line)


def read_truth(path: str | Path) -> Truth:
    expected: set[MismatchKey] = set()
    resolved: list[dict[str, Any]] = []
    lines: dict[str, dict[str, Any]] = {}
    summary: dict[str, Any] = {}
    kept: list[dict[str, Any]] = []
    for record in records(path):
        kind = record["record"]
        if kind == "expected_mismatch":
            expected.add(mismatch_key(record["reason"], record))
            kept.append(record)
        elif kind == "resolved_anomaly":
            resolved.append(record)
        elif kind == "bank_line":
            lines[record["line_id"]] = record
        elif kind == "summary":
            summary = record
    if not summary:
        raise ValueError(f"{path}: no summary record; the truth file is incomplete")
    return Truth(frozenset(expected), tuple(resolved), lines, summary, tuple(kept))
