"""Mismatches of the settlement processors: raised when a finding first holds, resolved
(`auto`) when it no longer does. Like the ledger's conditions, findings are derived from
the facts each time, so the open set does not depend on arrival order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.events import ReasonCode, Severity
from services.domain.outputs import derived_id, output, trusted

SEVERITY: dict[ReasonCode, Severity] = {
    ReasonCode.PAYOUT_AMOUNT_MISMATCH: "high",
    ReasonCode.PAYOUT_NOT_IN_BANK: "high",
    ReasonCode.UNMATCHED_BANK_LINE: "medium",
    ReasonCode.AMBIGUOUS_BANK_LINE: "medium",
}


@dataclass(frozen=True, slots=True)
class Finding:
    reason: ReasonCode
    subject: str  # the payout id or line id the mismatch is about; with reason, its identity
    discriminator: str
    currency: str
    expected: Decimal | None = None
    actual: Decimal | None = None
    payout_id: str | None = None
    line_id: str | None = None
    customer_id: str | None = None
    suggestions: tuple[ev.Suggestion, ...] = ()

    @property
    def mismatch_id(self) -> str:
        return mismatch_id(self.subject, self.reason, self.discriminator)


@dataclass(frozen=True, slots=True)
class OpenFinding:
    """A mismatch raised and not yet resolved, with the ids its resolution repeats so
    that both land on one partition of o2c.mismatches."""

    mismatch_id: str
    reason: ReasonCode
    payout_id: str | None = None
    line_id: str | None = None
    customer_id: str | None = None


def mismatch_id(subject: str, reason: ReasonCode, discriminator: str = "") -> str:
    return derived_id(subject, reason, discriminator)


def reconcile(
    open_now: tuple[OpenFinding, ...], findings: Iterable[Finding], cause: CloudEvent
) -> tuple[tuple[OpenFinding, ...], list[CloudEvent]]:
    """The open mismatches once `findings` hold, and the events that say what changed."""
    holding = {f.mismatch_id: f for f in findings}
    outputs: list[CloudEvent] = []
    still_open: list[OpenFinding] = []
    for mismatch in open_now:
        if mismatch.mismatch_id in holding:
            still_open.append(mismatch)
        else:
            outputs.append(resolved(mismatch, cause))
    already = {m.mismatch_id for m in open_now}
    for key, finding in sorted(holding.items()):
        if key in already:
            continue
        f = finding
        still_open.append(OpenFinding(key, f.reason, f.payout_id, f.line_id, f.customer_id))
        outputs.append(detected(finding, cause))
    return tuple(sorted(still_open, key=lambda m: m.mismatch_id)), outputs


def detected(finding: Finding, cause: CloudEvent) -> ev.MismatchDetected:
    expected, actual = finding.expected, finding.actual
    data = trusted(  # every field, in declaration order: see outputs.construct
        ev.MismatchDetectedData,
        mismatch_id=finding.mismatch_id,
        reason=finding.reason,
        severity=SEVERITY.get(finding.reason, "medium"),
        currency=finding.currency,
        expected=expected,
        actual=actual,
        difference=None if expected is None or actual is None else actual - expected,
        order_id=None,
        payment_id=None,
        payout_id=finding.payout_id,
        line_id=finding.line_id,
        customer_id=finding.customer_id,
        detected_at=cause.time,
        suggestions=finding.suggestions,
    )
    return output(ev.MismatchDetected, data, cause, finding.mismatch_id)


def resolved(mismatch: OpenFinding, cause: CloudEvent) -> ev.MismatchResolved:
    data = trusted(
        ev.MismatchResolvedData,
        mismatch_id=mismatch.mismatch_id,
        resolution="auto",
        note=None,
        reason=mismatch.reason,
        order_id=None,
        payment_id=None,
        payout_id=mismatch.payout_id,
        line_id=mismatch.line_id,
        customer_id=mismatch.customer_id,
        resolved_at=cause.time,
    )
    return output(ev.MismatchResolved, data, cause, mismatch.mismatch_id)
