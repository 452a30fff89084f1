"""Keyed, the map of open items per customer: a dict to read, never changed by an update."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.domain.keyed import Keyed

keys = st.sampled_from([f"O-{n}" for n in range(40)])
operations = st.lists(st.tuples(keys, st.none() | st.integers()), max_size=200)


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
        assert version == Keyed(wanted.items())
        assert all(version.get(k) == wanted.get(k) for k in [f"O-{n}" for n in range(40)])
