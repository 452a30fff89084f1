"""Reading a file's bytes as text the way banks actually encode them."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TypeVar

from services.importers.errors import ImportFailed

_Record = TypeVar("_Record", covariant=True)


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


class _Counted(Protocol):
    @property
    def line_num(self) -> int: ...


class _CsvReader(_Counted, Protocol[_Record]):
    def __next__(self) -> _Record: ...


def csv_records(
    path: str, reader: _CsvReader[_Record], first_line: int = 1, lines: _Counted | None = None
) -> Iterator[_Record]:
    """The records of a `csv` reader; ImportFailed at the line where `csv` gives up (a field
    over its size limit, say). `lines` counts the lines read when `reader` does not keep
    count itself as it fails (a DictReader counts only the rows it returned: pass its
    `.reader`)."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = first_line + (lines or reader).line_num - 1
            raise ImportFailed(path, f"line {line}", f"not readable as CSV: {exc}") from None
