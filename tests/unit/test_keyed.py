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
