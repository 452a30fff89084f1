"""How a processor's state is stored in its table: a format line, then JSON.

The format line is bumped whenever the stored form changes. State in another format cannot
be read: the worker then needs a new application id, which rebuilds it from the input log.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import PlainSerializer, TypeAdapter

S = TypeVar("S")

# Stored sorted: a set's iteration order changes from process to process (string hashing is
# salted), and the same state should always be the same bytes in its changelog.
SortedIds = Annotated[frozenset[str], PlainSerializer(sorted, return_type=list[str])]


class StateFormatError(RuntimeError):
    pass


class StoredState(Generic[S]):
    def __init__(self, state_type: type[S], format_line: bytes, table: str) -> None:
        self._adapter = TypeAdapter(state_type)
        self.format_line = format_line
        self._table = table

    def dump(self, state: S, prefix: bytes = b"") -> bytes:
        """The stored bytes; `prefix` goes between the format line and the JSON."""
        return self.format_line + prefix + self._adapter.dump_json(state)

    def check(self, raw: bytes) -> None:
        if not raw.startswith(self.format_line):
            raise StateFormatError(
                f"the {self._table} table holds state in another format than this version "
                f"writes ({raw[:12]!r}…, expected {self.format_line!r}); start the worker "
                "with a new O2C_APP_ID to rebuild it from the input topics"
            )

    def load(self, raw: bytes, prefix_length: int = 0) -> S:
        self.check(raw)
        return self._adapter.validate_json(raw[len(self.format_line) + prefix_length :])
