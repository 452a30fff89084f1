"""Facts as events with deterministic ids: the same entry of the same file, the same bytes.

Ids are uuid5 over the entry's stable content plus its occurrence number among entries with
the same content, not over its position in the file. So two exports that overlap (Monday's
and Tuesday's statement both holding Monday afternoon) give the same ids for the same
bookings, and only the new ones are published.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

import orjson
from pydantic import ValidationError

from schemas import events as ev
from schemas.money import format_amount

# Fixed for all time: changing it changes every id and defeats re-import detection.
NAMESPACE = uuid.UUID("8b3f6c2e-5a0d-4f59-9c39-1f4e0d2a7b61")
SPECVERSION = "1.0"


class InvalidEntry(ValueError):
    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


def describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
    )


@dataclass(frozen=True)
class BankEntry:
    """One booked entry as a parser reads it, before it becomes an event."""

    account_id: str
    booking_date: date
    amount: Decimal  # signed: credits positive
    currency: str
    value_date: date | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    remittance_info: str | None = None
    end_to_end_id: str | None = None
    bank_reference: str | None = None
    where: str = ""  # "line 12" or "element …", for error messages

    def identity(self) -> tuple[str, ...]:
        return (
            self.account_id,
            self.booking_date.isoformat(),
            format_amount(self.amount),
            self.currency,
            self.remittance_info or "",
            self.end_to_end_id or "",
            self.bank_reference or "",
            self.counterparty_account or "",
        )


def _midnight(day: date) -> datetime:
    # Business time of a booking is its day; the wall clock never enters an event.
    return datetime.combine(day, time(0), tzinfo=UTC)


def _clip(text: str | None, limit: int = 4000) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text[:limit] if text else None


def bank_line_events(
    entries: Iterable[BankEntry], source: str
) -> list[tuple[ev.BankLineBooked, str]]:
    """Validated events, each with the `where` of its entry; ValueError names the field."""
    seen: Counter[tuple[str, ...]] = Counter()
    out: list[tuple[ev.BankLineBooked, str]] = []
    for entry in entries:
        identity = entry.identity()
        seen[identity] += 1
        digest = uuid.uuid5(NAMESPACE, "bank_line|" + "|".join((*identity, str(seen[identity]))))
        line_id = f"{entry.account_id}:{entry.booking_date:%Y%m%d}:{digest.hex[:12]}"
        try:
            data = _bank_line_data(entry, line_id)
        except ValidationError as exc:
            raise InvalidEntry(entry.where, describe(exc)) from None
        event = ev.BankLineBooked(
            specversion=SPECVERSION,
            id=str(digest),
            source=source,
            type="o2c.bank_line.booked.v1",
            time=_midnight(entry.booking_date),
            subject=line_id,
            data=data,
        )
        out.append((event, entry.where))
    return out


def _bank_line_data(entry: BankEntry, line_id: str) -> ev.BankLineBookedData:
    return ev.BankLineBookedData(
        line_id=line_id,
        account_id=entry.account_id,
        booking_date=entry.booking_date,
        value_date=entry.value_date,
        amount=entry.amount,
        currency=entry.currency,
        counterparty_name=_clip(entry.counterparty_name),
        counterparty_account=_clip(entry.counterparty_account, 200),
        remittance_info=_clip(entry.remittance_info),
        end_to_end_id=_clip(entry.end_to_end_id, 200),
        bank_reference=_clip(entry.bank_reference, 200),
    )


def payout_event(data: ev.PayoutReportedData, source: str) -> ev.PayoutReported:
    """The event of one payout; its id hashes the whole payout, so a corrected report of the
    same payout is a new fact while the same report again is not."""
    canonical = orjson.dumps(data.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    digest = uuid.uuid5(NAMESPACE, "payout|" + canonical.decode())
    return ev.PayoutReported(
        specversion=SPECVERSION,
        id=str(digest),
        source=source,
        type="o2c.payout.reported.v1",
        time=_midnight(data.payout_date),
        subject=data.payout_id,
        data=data,
    )
