"""A task's store: states stay objects within a batch, reach RocksDB only at the checkpoint
with the changelog offset they reach, and a discarded batch leaves nothing behind."""

from __future__ import annotations

import time
from pathlib import Path

from schemas.topics import CHANGELOG_TOMBSTONE_RETENTION_MS, changelog_topic
from services.runtime.engine import _missed_tombstones
from services.runtime.store import Codec, Memory, Store, StoreSpec

SPEC = StoreSpec("numbers", Codec(lambda raw: int(raw), lambda n: str(n).encode()))


def _store(tmp_path: Path) -> Store[int]:
    return Store(SPEC, tmp_path / "numbers" / "0", Memory(1, 1))


def test_a_state_put_in_a_batch_is_read_back_before_and_after_its_checkpoint(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    store.put(b"a", 41)
    assert store.get(b"a") == 41
    assert store.changes() == [(b"a", b"41")]

    store.checkpoint(7)

    assert store.get(b"a") == 41
    assert not store.dirty
    assert store.checkpointed() == 7


def test_a_discarded_batch_changes_neither_the_store_nor_its_checkpoint(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.put(b"a", 1)
    store.changes()
    store.checkpoint(3)
    store.put(b"a", 2)
    store.put_raw(b"\x00clock/0", b"2026-11-02")

    store.discard()

    assert store.get(b"a") == 1
    assert store.get_raw(b"\x00clock/0") is None
    assert store.checkpointed() == 3


def test_state_survives_closing_and_reopening_the_database(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.put(b"a", 5)
    store.changes()
    store.checkpoint(1)
    store.close()

    again = _store(tmp_path)
    assert again.get(b"a") == 5
    assert again.checkpointed() == 1


def test_scan_gives_pending_states_over_stored_ones_and_hides_the_runtimes_keys(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    store.put(b"a", 1)
    store.put(b"b", 2)
    store.changes()
    store.checkpoint(2)
    store.put(b"b", 20)

    seen = {key: (state, raw) for key, state, raw in store.scan()}

    assert seen == {b"b": (20, None), b"a": (1, b"1")}


def test_restored_changelog_records_replace_and_delete_states(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.put(b"a", 1)
    store.changes()
    store.checkpoint(1)

    store.restore([(b"a", b"9"), (b"c", b"3"), (b"c", None)], next_offset=4)

    assert store.get(b"a") == 9
    assert store.get(b"c") is None
    assert store.checkpointed() == 4


def test_a_checkpoint_remembers_when_it_was_written_across_reopening(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.checkpointed_at() is None
    before = time.time()
    store.put(b"a", 1)
    store.changes()
    store.checkpoint(4)
    store.close()

    written = _store(tmp_path).checkpointed_at()

    assert written is not None
    assert before <= written <= time.time()


def test_a_checkpoint_older_than_the_changelogs_tombstones_is_restored_anew() -> None:
    kept = CHANGELOG_TOMBSTONE_RETENTION_MS / 1000
    now = 1_800_000_000.0

    assert not _missed_tombstones(now - 60, now)
    assert not _missed_tombstones(now - kept / 2, now)
    assert _missed_tombstones(now - kept, now)
    # A database checkpointed by a version that did not record when cannot be trusted.
    assert _missed_tombstones(None, now)


def test_changelog_topics_keep_tombstones_as_long_as_the_runtime_trusts_a_checkpoint() -> None:
    config = changelog_topic("o2c-matcher", "credit").config()

    assert config["cleanup.policy"] == "compact"
    assert config["delete.retention.ms"] == str(CHANGELOG_TOMBSTONE_RETENTION_MS)
