"""Schema evolution: how an event type changes without breaking its consumers.

- An additive, optional field stays in the same `.v1` type: consumers ignore fields they
  do not know, and a missing optional field has a default.
- A breaking change (a renamed, removed or retyped field, a new required field) is a new
  type `.v2` beside `.v1`. Producers move to `.v2` at their own pace; an upcaster here turns
  each older document into the next version, so the core only ever sees the newest model
  and the log, which keeps the old bytes forever, still replays.

An upcaster is a pure function from one version's JSON document to the next version's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Document = dict[str, Any]
Upcaster = Callable[[Document], Document]

# old CloudEvents type -> function returning the same event as the next version
UPCASTERS: dict[str, Upcaster] = {}

_MAX_STEPS = 20


def upcast(document: Document) -> Document:
    """The document in the newest version of its type (unchanged when there is none)."""
    for _ in range(_MAX_STEPS):
        upcaster = UPCASTERS.get(document.get("type", ""))
        if upcaster is None:
            return document
        document = upcaster(document)
    raise ValueError(f"upcasters for {document.get('type')!r} do not end; check for a cycle")
