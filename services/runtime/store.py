"""A task's state store: a RocksDB database on local disk, backed by a compacted changelog.

Within a batch, states are objects in an overlay: a busy key (a customer with many open
items) is parsed once and serialised once per batch, not once per event. At the end of a
batch the runtime asks for the changed records (`changes`), produces them to the
changelog, and once the broker has acknowledged them writes them to RocksDB together with
the changelog offset they reach (`checkpoint`), in one write batch. A restart therefore
restores only the changelog's tail past that offset; the local database is never ahead of
the changelog.

A state that holds a map growing with its key (a customer's open items) can be stored as
a head record and one record per entry (`Entries`): a batch then writes the head and the
entries that changed, not the whole map, and the changelog carries the same records.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch

log = logging.getLogger(__name__)

S = TypeVar("S")

# Keys the runtime keeps for itself; a processor's keys never start with two NULs.
RUNTIME_PREFIX = b"\x00\x00"
CHECKPOINT_KEY = RUNTIME_PREFIX + b"changelog-offset"
# When the checkpoint was written (seconds since the epoch): a checkpoint older than the
# changelog keeps its tombstones cannot be brought up to date from the changelog's tail.
CHECKPOINTED_AT_KEY = RUNTIME_PREFIX + b"checkpointed-at"
# Parsed states remembered after a batch, per task's store (a ledger is about 4 KB as
# objects): a key written in one batch is often read in the next (an order's payment
# follows its placement).
RECENT_STATES = 2_000


@dataclass(frozen=True)
class Entries(Generic[S]):
    """A state stored as a head (under its key) and records of entries (under the key, a
    NUL, and the entry's name). A state so stored is never deleted as a whole."""

    head: Callable[[S], bytes]
    # The entries' records to write (None: to delete) once the first state became the
    # second (None: a state with no entries stored).
    changed: Callable[[S | None, S], Iterable[tuple[str, bytes | None]]]
    load: Callable[[bytes, Iterable[tuple[str, bytes]]], S]  # from the head and its entries
    # Whether a head was written with its entries apart (an older one holds them itself).
    apart: Callable[[bytes], bool]


ENTRY_SEPARATOR = b"\x00"


def is_entry(key: bytes) -> bool:
    """An entry's record, not a state's head (bookkeeping keys start with NUL)."""
    return ENTRY_SEPARATOR in key and not key.startswith(ENTRY_SEPARATOR)


@dataclass(frozen=True)
class Codec(Generic[S]):
    """How a store turns its states into bytes and back."""

    load: Callable[[bytes], S]
    dump: Callable[[S], bytes]
    entries: Entries[S] | None = None  # when set, states are stored as a head and entries


@dataclass(frozen=True)
class StoreSpec(Generic[S]):
    name: str  # the changelog is "{app_id}-{name}-changelog"
    codec: Codec[S]


@dataclass(frozen=True)
class Memory:
    """RocksDB memory per database: (write buffer x 2 + block cache) at most."""

    write_buffer_mb: int = 8
    block_cache_mb: int = 16

    def options(self) -> Options:
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_write_buffer_size(self.write_buffer_mb * 1024 * 1024)
        options.set_max_write_buffer_number(2)
        table = BlockBasedOptions()
        table.set_block_cache(Cache(self.block_cache_mb * 1024 * 1024))
        options.set_block_based_table_factory(table)
        return options


_DELETED: Any = object()


class Store(Generic[S]):
    """The state of one task of one processor, keyed by bytes."""

    def __init__(self, spec: StoreSpec[S], path: Path, memory: Memory) -> None:
        self.spec = spec
        self.path = path
        self._memory = memory
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path), memory.options())
        self._states: dict[bytes, S] = {}  # changed this batch, as objects
        self._raw: dict[bytes, bytes | None] = {}  # changed this batch, as bytes (None: deleted)
        self._recent: dict[bytes, S] = {}  # parsed states equal to what RocksDB holds
        # With Entries: per key read this batch, the state RocksDB holds, and whether its
        # entries are stored apart (what a put must write is the difference).
        self._stored: dict[bytes, tuple[S | None, bool]] = {}
        self._pending_records: list[tuple[bytes, bytes | None]] = []  # given to the changelog

    # --- reads and writes of a core ------------------------------------------------------

    def get(self, key: bytes) -> S | None:
        state = self._states.get(key)
        if state is not None:
            return state
        if key in self._raw:
            raw = self._raw[key]
            return None if raw is None else self.spec.codec.load(raw)
        if self.spec.codec.entries is not None:
            return self._stored_apart(key)[0]
        known = self._recent.get(key)
        if known is not None:
            return known
        stored = self._db.get(key)
        return None if stored is None else self.spec.codec.load(stored)

    def _stored_apart(self, key: bytes) -> tuple[S | None, bool]:
        """The state RocksDB holds as a head and entries, parsed once per batch."""
        entries = self.spec.codec.entries
        assert entries is not None
        known = self._stored.get(key)
        if known is not None:
            return known
        recent = self._recent.get(key)
        if recent is not None:
            known = (recent, True)  # written by this process, so apart
        else:
            head = self._db.get(key)
            if head is None:
                known = (None, True)
            else:
                prefix = key + ENTRY_SEPARATOR
                records: list[tuple[str, bytes]] = []
                for entry_key, value in self._db.items(from_key=prefix):
                    if not cast(bytes, entry_key).startswith(prefix):
                        break
                    records.append((cast(bytes, entry_key)[len(prefix) :].decode(), value))
                known = (entries.load(head, records), entries.apart(head))
        self._stored[key] = known
        return known

    def put(self, key: bytes, state: S) -> None:
        if self.spec.codec.entries is not None:
            if key in self._raw:
                raise ValueError("a state stored as entries is never deleted or raw")
            self._stored_apart(key)  # what RocksDB holds, to write only the difference
        self._raw.pop(key, None)
        self._states[key] = state

    def get_raw(self, key: bytes) -> bytes | None:
        """Bookkeeping values a processor keeps as bytes (not states of its codec)."""
        if key in self._raw:
            return self._raw[key]
        return cast(bytes | None, self._db.get(key))

    def put_raw(self, key: bytes, value: bytes | None) -> None:
        self._states.pop(key, None)
        self._raw[key] = value

    def scan(self) -> Iterator[tuple[bytes, S | None, bytes | None]]:
        """Every key of the task but the runtime's own, once: (key, its state as an object
        when one is at hand, else None; its stored bytes, else None). Pending changes hide
        what is stored."""
        pending: set[bytes] = set()
        for key, state in self._states.items():
            pending.add(key)
            yield key, state, None
        for key, raw in self._raw.items():
            pending.add(key)
            if raw is not None:
                yield key, None, raw
        apart = self.spec.codec.entries is not None
        for stored_key, stored in self._db.items():
            key = cast(bytes, stored_key)
            if key in pending or key.startswith(RUNTIME_PREFIX) or (apart and is_entry(key)):
                continue
            yield key, self._recent.get(key), cast(bytes, stored)

    # --- the runtime's side --------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return bool(self._states or self._raw)

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """The batch's changed records as bytes (None: deleted), for the changelog."""
        dump = self.spec.codec.dump
        records: list[tuple[bytes, bytes | None]] = list(self._raw.items())
        entries = self.spec.codec.entries
        if entries is None:
            records.extend((key, dump(state)) for key, state in self._states.items())
        else:
            for key, state in self._states.items():
                before, apart = self._stored_apart(key)
                records.append((key, entries.head(state)))
                # A head of an older format held its entries: all are written apart now.
                changed = entries.changed(before if apart else None, state)
                records.extend((key + ENTRY_SEPARATOR + name.encode(), v) for name, v in changed)
        self._pending_records = records
        return records

    def checkpoint(self, changelog_next_offset: int | None) -> None:
        """Write the batch's changes (as `changes` gave them) and the changelog offset they
        reach to RocksDB in one write batch, then forget the overlay."""
        batch = WriteBatch(raw_mode=True)
        for key, value in self._pending_records:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        if changelog_next_offset is not None:
            batch.put(CHECKPOINT_KEY, str(changelog_next_offset).encode())
            batch.put(CHECKPOINTED_AT_KEY, repr(time.time()).encode())
        self._db.write(batch)
        if len(self._recent) + len(self._states) > RECENT_STATES:
            self._recent.clear()  # crude but bounded; the next batches refill it
        self._recent.update(self._states)
        for key in self._raw:
            self._recent.pop(key, None)
        self.discard()

    def discard(self) -> None:
        """Forget the batch's changes (the batch will be handled again)."""
        self._states.clear()
        self._raw.clear()
        self._stored.clear()
        self._pending_records = []

    # --- restoring from the changelog ----------------------------------------------------

    def checkpointed(self) -> int:
        raw = self._db.get(CHECKPOINT_KEY)
        return int(raw) if raw else 0

    def checkpointed_at(self) -> float | None:
        """When the checkpoint was written; None if never, or by a version that did not say."""
        raw = self._db.get(CHECKPOINTED_AT_KEY)
        return float(raw) if raw else None

    def restore(self, records: list[tuple[bytes, bytes | None]], next_offset: int) -> None:
        """Apply changelog records read from the checkpoint on, and the new checkpoint."""
        self._recent.clear()
        self._stored.clear()
        batch = WriteBatch(raw_mode=True)
        for key, value in records:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(CHECKPOINT_KEY, str(next_offset).encode())
        batch.put(CHECKPOINTED_AT_KEY, repr(time.time()).encode())
        self._db.write(batch)

    def wipe(self) -> None:
        """Start from nothing: the changelog this database followed is not the one on the
        broker any more (a topic deleted and created again)."""
        self._db.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self._db = Rdict(str(self.path), self._memory.options())
        self._recent.clear()
        self.discard()

    def close(self) -> None:
        self.discard()
        self._recent.clear()
        self._db.close()
