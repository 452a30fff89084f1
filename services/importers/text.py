"""Reading a file's bytes as text the way banks actually encode them."""

from __future__ import annotations

from pathlib import Path

from services.importers.errors import ImportFailed


def read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ImportFailed(path, "", "no such file") from None
    except IsADirectoryError:
        raise ImportFailed(path, "", "is a directory, not a file") from None


def decode_statement(raw: bytes, encoding: str | None = None) -> str:
    """UTF-8 (with or without BOM), else Windows-1252: European banks still export MT940 in
    it, and every byte decodes, so a stray binary character cannot stop an import."""
    if encoding:
        return raw.decode(encoding)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")
