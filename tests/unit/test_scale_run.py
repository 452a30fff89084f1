"""The scale run publishes each day's facts before that day's close, resumes where it
stopped, and fails when a worker stops on its own (bench/scale.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bench.processes import Process
from bench.scale import Progress, _start, days


def test_stream_is_cut_at_each_day_closed_with_the_facts_before_it(tmp_path: Path) -> None:
    stream = tmp_path / "s.jsonl"
    closed = b'{"type":"o2c.day.closed.v1","data":{"date":"2026-11-02"}}'
    fact = b'{"type":"o2c.order.placed.v1"}'
    stream.write_bytes(b"\n".join([fact, fact, closed, b"", fact, closed, fact]) + b"\n")

    assert list(days(stream)) == [([fact, fact], closed), ([fact], closed), ([fact], None)]


def test_progress_saved_after_a_day_is_what_a_resumed_run_starts_from(tmp_path: Path) -> None:
    stream = tmp_path / "s.jsonl"
    progress = Progress(app_id="o2c-scale-1", stream=str(stream), days_done=3, published=90)
    progress.save(tmp_path)

    assert Progress.load(tmp_path) == progress
    assert _start(stream, tmp_path, "127.0.0.1:1") == (tmp_path, progress)  # no broker asked
    assert not list(tmp_path.glob("*.tmp"))


def test_resuming_a_work_directory_with_another_stream_is_refused(tmp_path: Path) -> None:
    Progress(app_id="o2c-scale-1", stream=str(tmp_path / "a.jsonl")).save(tmp_path)

    with pytest.raises(SystemExit, match="holds a run of"):
        _start(tmp_path / "b.jsonl", tmp_path, "127.0.0.1:1")


def _exits(tmp_path: Path, code: int) -> list[str]:
    """argv of a process that prints a line and exits with `code`."""
    return [sys.executable, "-c", f"import sys; print('start'); sys.exit({code})"]


def test_worker_that_stops_on_its_own_fails_the_run_at_once(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    worker = Process("worker", _exits(tmp_path, 70), dict(os.environ), log)
    worker.popen.wait(30)

    with pytest.raises(RuntimeError, match="worker stopped \\(exit 70\\)"):
        worker.check()
    assert worker.restarts == 0
    assert log.read_text().split() == ["start"]


def test_progress_of_a_run_from_before_restarts_were_counted_loads_with_none(
    tmp_path: Path,
) -> None:
    (tmp_path / "progress.json").write_text('{"app_id": "o2c-scale-1", "stream": "s.jsonl"}')

    progress = Progress.load(tmp_path)

    assert progress is not None
    assert progress.worker_restarts == 0
