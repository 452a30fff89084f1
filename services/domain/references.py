"""Finding the order a payment or bank line names in its free-text reference."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# The first capturing group of the first pattern that matches is the order id.
DEFAULT_ORDER_PATTERNS: tuple[str, ...] = (
    r"\b(ORD-[A-Za-z0-9][A-Za-z0-9-]*)\b",
    r"(?i)\border\s*(?:no\.?|number|nr\.?|#|:)\s*([A-Za-z0-9][A-Za-z0-9-]{2,})",
    r"订单号?[:：\s]*([A-Za-z0-9][A-Za-z0-9-]{2,})",
)


class ReferencePatterns:
    def __init__(self, patterns: Iterable[str] = DEFAULT_ORDER_PATTERNS) -> None:
        self.patterns: Sequence[re.Pattern[str]] = tuple(re.compile(p) for p in patterns)
        for pattern in self.patterns:
            if pattern.groups < 1:
                raise ValueError(f"pattern {pattern.pattern!r} needs a capturing group")

    def order_id(self, *texts: str | None) -> str | None:
        """The order id named in the first text that names one, else None."""
        for text in texts:
            if not text:
                continue
            for pattern in self.patterns:
                found = pattern.search(text)
                if found:
                    return found.group(1)
        return None
