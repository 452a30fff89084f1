"""PSP settlement reports to `PayoutReported` events, one per payout in the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from services.importers.batch import ImportBatch, with_card_numbers_masked
from services.importers.errors import ImportFailed
from services.importers.psp.adyen import parse_adyen
from services.importers.psp.alipay import parse_alipay
from services.importers.psp.common import Parsed, build_payouts
from services.importers.psp.paypal import parse_paypal
from services.importers.psp.stripe import parse_stripe
from services.importers.psp.wechat import parse_wechat
from services.importers.text import read_bytes

_PARSERS: dict[str, Callable[[str, bytes], Parsed]] = {
    "stripe": parse_stripe,
    "adyen": parse_adyen,
    "alipay": parse_alipay,
    "wechat_pay": parse_wechat,
    "paypal": parse_paypal,
}
PROVIDERS = tuple(_PARSERS)


def parse_psp(path: str | Path, provider: str) -> ImportBatch:
    """Parse and validate a whole report; ImportFailed names the file and the line."""
    name = str(path)
    if provider not in _PARSERS:
        raise ImportFailed(
            name, "", f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}"
        )
    parsed = _PARSERS[provider](name, read_bytes(path))
    events = build_payouts(name, provider, parsed.rows, parsed.reported)
    return with_card_numbers_masked(ImportBatch(name, provider, tuple(events), parsed.skipped))
