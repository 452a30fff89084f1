"""Importers: bank statements and PSP settlement reports turned into validated facts.

Pure parsers (no Kafka): `parse_bank` returns `BankLineBooked` events, `parse_psp` returns
`PayoutReported` events, each with a deterministic id, so that importing the same file twice
yields the same events byte for byte. Publishing lives in `services.importers.publishing`.
"""

from services.importers.bank import BANK_FORMATS, detect_format, parse_bank
from services.importers.errors import ImportFailed
from services.importers.psp import PROVIDERS, parse_psp

__all__ = ["BANK_FORMATS", "PROVIDERS", "ImportFailed", "detect_format", "parse_bank", "parse_psp"]
