"""Keyed, the map of open items per customer: a dict to read, never changed by an update."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.domain.keyed import Keyed

KEYS = [f"O-{n}" for n in range(150)]  # past 64 entries a map spreads over buckets
keys = st.sampled_from(KEYS)
operations = st.lists(st.tuples(keys, st.none() | st.integers()), max_size=400)


@settings(deadline=None)
@given(operations)
def test_every_version_reads_as_the_dict_of_the_same_updates(
    ops: list[tuple[str, int | None]],
) -> None:
    keyed: Keyed[int] = Keyed()
    expected: dict[str, int] = {}
    versions = [(keyed, dict(expected))]
    for key, value in ops:
        if value is None:
            keyed = keyed.remove(key)
            expected.pop(key, None)
        else:
            keyed = keyed.set(key, value)
            expected[key] = value
        versions.append((keyed, dict(expected)))
    for version, wanted in versions:  # the earlier versions are as they were
        assert dict(version.items()) == wanted
        assert len(version) == len(wanted)
        assert list(version) == sorted(wanted)
        assert sorted(version.unordered_values()) == sorted(wanted.values())
        assert version == Keyed(wanted.items())
        assert all(version.get(k) == wanted.get(k) for k in KEYS)
        assert all((k in version) == (k in wanted) for k in KEYS)


def test_a_map_spread_over_buckets_reads_as_its_dict() -> None:
    small: Keyed[int] = Keyed((k, n) for n, k in enumerate(KEYS[:60]))
    grown = small
    for n, key in enumerate(KEYS):
        grown = grown.set(key, n)
    shrunk = grown.remove("O-3").remove("O-149").remove("missing")
    assert dict(small.items()) == {k: n for n, k in enumerate(KEYS[:60])}
    assert dict(grown.items()) == {k: n for n, k in enumerate(KEYS)}
    assert len(shrunk) == len(KEYS) - 2
    assert "O-3" not in shrunk
    assert shrunk.get("O-149") is None
    assert shrunk == Keyed(kv for kv in grown.items() if kv[0] not in {"O-3", "O-149"})
    assert list(shrunk) == sorted(set(KEYS) - {"O-3", "O-149"})


def test_changed_entries_names_what_was_set_added_and_removed_in_key_order() -> None:
    from services.domain.keyed import changed_entries

    for size in (3, 200):  # one bucket, and spread over many
        before = Keyed((f"k{n:04d}", n) for n in range(size))
        after = before.set("k0001", -1).set("k9999", 9).remove("k0002").set("k0000", 0)
        assert changed_entries(before, after) == [("k0001", -1), ("k0002", None), ("k9999", 9)]
        assert changed_entries(None, after) == after.sorted_items()
        assert changed_entries(after, after) == []


def test_changed_entries_of_a_map_that_grew_past_one_bucket_compares_every_entry() -> None:
    from services.domain.keyed import changed_entries

    small = Keyed((f"k{n:03d}", n) for n in range(60))
    grown = small
    for n in range(60, 70):
        grown = grown.set(f"k{n:03d}", n)
    rebuilt_equal = Keyed((f"k{n:03d}", n) for n in range(60))

    assert changed_entries(small, grown) == [(f"k{n:03d}", n) for n in range(60, 70)]
    assert changed_entries(small, rebuilt_equal) == []


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(max_size=3), st.integers(0, 5), max_size=150),
    st.lists(st.tuples(st.text(max_size=3), st.integers(-1, 5)), max_size=30),
)
def test_writing_the_changed_entries_over_the_old_map_gives_the_new_one(
    start: dict[str, int], updates: list[tuple[str, int]]
) -> None:
    """What a store of one record per entry relies on: old records plus the changes (None
    deletes; -1 below removes the key) are exactly the new map."""
    from services.domain.keyed import changed_entries

    before = Keyed(start.items())
    after = before
    for key, value in updates:
        after = after.remove(key) if value < 0 else after.set(key, value)
    records = dict(start)
    for key, changed in changed_entries(before, after):
        if changed is None:
            del records[key]
        else:
            records[key] = changed
    assert records == dict(after.items())
