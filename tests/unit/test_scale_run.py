"""The scale run publishes each day's facts before that day's close (bench/scale.py)."""

from __future__ import annotations

from pathlib import Path

from bench.scale import days


def test_stream_is_cut_at_each_day_closed_with_the_facts_before_it(tmp_path: Path) -> None:
    stream = tmp_path / "s.jsonl"
    closed = b'{"type":"o2c.day.closed.v1","data":{"date":"2026-11-02"}}'
    fact = b'{"type":"o2c.order.placed.v1"}'
    stream.write_bytes(b"\n".join([fact, fact, closed, b"", fact, closed, fact]) + b"\n")

    assert list(days(stream)) == [([fact, fact], closed), ([fact], closed), ([fact], None)]
