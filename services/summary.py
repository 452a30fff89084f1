"""The reconciliation summary: where every order stands now, and what is still wrong.

Counts come from each order's latest balance.changed and from mismatches still open, so
they depend only on the events, not on the order in which the worker happened to see them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from schemas import events as ev
from schemas.events import type_name

_BALANCE_CHANGED = type_name(ev.BalanceChanged)
_MISMATCH_DETECTED = type_name(ev.MismatchDetected)
_MISMATCH_RESOLVED = type_name(ev.MismatchResolved)
_WRITEOFF = type_name(ev.WriteoffApplied)

MATCHED_STATUSES = frozenset({"paid", "settled", "written_off"})
STATUS_COLUMNS = ("open", "partially_paid", "overpaid", "cancelled")


@dataclass
class Summary:
    only_orders: Collection[str] | None = None
    status: dict[str, str] = field(default_factory=dict)
    detected: dict[str, str] = field(default_factory=dict)
    resolved: set[str] = field(default_factory=set)
    written_off: int = 0
    dead_letters: int = 0
    _seen: set[str] = field(default_factory=set)

    def add_output(self, document: dict[str, Any]) -> None:
        if document.get("id") in self._seen:
            return  # a redelivered output: outputs carry deterministic ids
        self._seen.add(document["id"])
        data = document.get("data", {})
        if self.only_orders is not None and data.get("order_id") not in self.only_orders:
            return
        kind = document.get("type")
        if kind == _BALANCE_CHANGED:
            self.status[data["order_id"]] = data["status"]
        elif kind == _MISMATCH_DETECTED:
            self.detected[data["mismatch_id"]] = data["reason"]
        elif kind == _MISMATCH_RESOLVED:
            self.resolved.add(data["mismatch_id"])
        elif kind == _WRITEOFF:
            self.written_off += 1

    def add_dead_letter(self, key: str) -> None:
        if self.only_orders is None or key in self.only_orders:
            self.dead_letters += 1

    def order_row(self) -> tuple[tuple[str, ...], tuple[object, ...]]:
        statuses = Counter(self.status.values())
        matched = sum(statuses[s] for s in MATCHED_STATUSES)
        rate = f"{100 * matched / len(self.status):.1f}%" if self.status else "-"
        headers = ("orders", "matched", "match rate", *STATUS_COLUMNS, "dead letters")
        values = (len(self.status), matched, rate, *(statuses[s] for s in STATUS_COLUMNS))
        return headers, (*values, self.dead_letters)

    def reason_rows(self) -> list[tuple[str, int, int]]:
        open_by_reason = Counter(r for m, r in self.detected.items() if m not in self.resolved)
        resolved_by_reason = Counter(r for m, r in self.detected.items() if m in self.resolved)
        reasons = sorted(set(self.detected.values()))
        rows = [(r, open_by_reason[r], resolved_by_reason[r]) for r in reasons]
        rows.append(("total", open_by_reason.total(), resolved_by_reason.total()))
        return rows
