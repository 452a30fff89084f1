"""An immutable map whose update costs the same for a customer of 10 orders or 10,000.

The credit and suspense states hold one entry per open order of a customer, and every
`balance.changed` replaces one entry. Copying a dict or a sorted tuple of every entry per
event made a B2B customer with thousands of open invoices a hundred times slower than a
retail one. `Keyed` spreads the entries over small dicts (by the key's hash): an update
copies the tuple of buckets and one bucket, and leaves the old map as it was. A small map
(most customers) has one bucket; past `_SMALL` entries it is spread over `_BUCKETS`.
Iteration is in key order, so nothing that reads a map depends on string hashing, which
Python salts per process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import compress
from operator import is_not
from typing import Any, TypeVar

V = TypeVar("V")

_SMALL = 64  # entries of a one-bucket map: copying them is cheaper than finding a bucket
_BUCKETS = 128  # ~80 entries a bucket at 10,000 open items: a copy of one is ~1 µs
_EMPTY: tuple[dict[str, Any], ...] = ({},)


def _first(entry: tuple[str, object]) -> str:
    return entry[0]


class Keyed(Mapping[str, V]):
    __slots__ = ("_buckets", "_size")

    _buckets: tuple[dict[str, V], ...]
    _size: int

    def __init__(self, entries: Iterable[tuple[str, V]] = ()) -> None:
        # Buckets are never changed once built (an update copies one), so empty maps, most
        # customers' at first, share theirs.
        self._buckets, self._size = _spread(dict(entries))

    def __getitem__(self, key: str) -> V:
        buckets = self._buckets
        return buckets[hash(key) % len(buckets)][key]

    def get(self, key: str, default: V | None = None) -> V | None:  # type: ignore[override]
        buckets = self._buckets
        return buckets[hash(key) % len(buckets)].get(key, default)

    def __contains__(self, key: object) -> bool:
        buckets = self._buckets
        return isinstance(key, str) and key in buckets[hash(key) % len(buckets)]

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(k for bucket in self._buckets for k in bucket))

    def sorted_items(self) -> list[tuple[str, V]]:
        """Every entry in key order, in one sort (keys are unique: no value is compared)."""
        return sorted((kv for bucket in self._buckets for kv in bucket.items()), key=_first)

    def sorted_values(self) -> list[V]:
        return [value for _, value in self.sorted_items()]

    def unordered_values(self) -> Iterator[V]:
        """Every value, in no particular order: for sums, which do not depend on it."""
        return (value for bucket in self._buckets for value in bucket.values())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Keyed) and len(self._buckets) == len(other._buckets):
            return self._size == other._size and self._buckets == other._buckets
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Keyed({dict(self.sorted_items())!r})"

    def set(self, key: str, value: V) -> Keyed[V]:
        """This map with `key` set to `value`."""
        buckets = self._buckets
        n = hash(key) % len(buckets)
        bucket = buckets[n]
        size = self._size + (key not in bucket)
        if len(buckets) == 1 and size > _SMALL:
            return _built(*_spread({**bucket, key: value}))
        return self._with(n, {**bucket, key: value}, size)

    def remove(self, key: str) -> Keyed[V]:
        """This map without `key` (itself when it has no such key)."""
        buckets = self._buckets
        n = hash(key) % len(buckets)
        bucket = buckets[n]
        if key not in bucket:
            return self
        smaller = dict(bucket)
        del smaller[key]
        return self._with(n, smaller, self._size - 1)

    def _with(self, n: int, bucket: dict[str, V], size: int) -> Keyed[V]:
        buckets = self._buckets
        return _built((*buckets[:n], bucket, *buckets[n + 1 :]), size)


def _spread(entries: dict[str, V]) -> tuple[tuple[dict[str, V], ...], int]:
    if not entries:
        return _EMPTY, 0
    if len(entries) <= _SMALL:
        return (entries,), len(entries)
    buckets: list[dict[str, V]] = [{} for _ in range(_BUCKETS)]
    for key, value in entries.items():
        buckets[hash(key) % _BUCKETS][key] = value
    return tuple(buckets), len(entries)


def _built(buckets: tuple[dict[str, V], ...], size: int) -> Keyed[V]:
    new: Keyed[V] = Keyed.__new__(Keyed)
    new._buckets = buckets
    new._size = size
    return new


def changed_entries(before: Keyed[V] | None, after: Keyed[V]) -> list[tuple[str, V | None]]:
    """The entries of `after` that `before` does not hold as they are (None: removed), in
    key order: what a store keeping one record per entry must write. An update copies one
    bucket and its values as they are, so buckets and values still the same objects are
    passed over by identity, in C (`map` of `is_not`): a change to one entry is found at
    about the same cost in a map of 10 entries or 10,000."""
    if before is None:
        return after.sorted_items()  # type: ignore[return-value]
    old_buckets, new_buckets = before._buckets, after._buckets
    if len(old_buckets) != len(new_buckets):  # spread over more buckets: compare all once
        old_buckets = ({k: v for b in old_buckets for k, v in b.items()},)
        new_buckets = ({k: v for b in new_buckets for k, v in b.items()},)
    changed: list[tuple[str, V | None]] = []
    for n in compress(range(len(new_buckets)), map(is_not, old_buckets, new_buckets)):
        old, new = old_buckets[n], new_buckets[n]
        keys = list(new)
        # A key new to the bucket reads None from `old`, which no value is.
        maybe = compress(keys, map(is_not, new.values(), map(old.get, keys)))
        changed.extend((key, new[key]) for key in maybe if old.get(key) != new[key])
        changed.extend((key, None) for key in old.keys() - new.keys())
    changed.sort(key=_first)
    return changed
