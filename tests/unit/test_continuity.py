"""A worker stops when faust loses an input message on the way to an agent."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from services.worker.continuity import Continuity, LostMessages


def records(topic: str, partition: int, *offsets: int) -> list[Any]:
    return [
        SimpleNamespace(message=SimpleNamespace(topic=topic, partition=partition, offset=o))
        for o in offsets
    ]


def test_consecutive_offsets_across_batches_and_partitions_pass() -> None:
    continuity = Continuity(lambda: 1)
    continuity.check(records("o2c.orders", 0, 5, 6) + records("o2c.orders", 1, 40))
    continuity.check(records("o2c.orders", 0, 7) + records("o2c.orders", 1, 41, 42))


def test_a_skipped_offset_within_a_partition_stops_the_worker() -> None:
    continuity = Continuity(lambda: 1)
    continuity.check(records("o2c.orders", 10, 3361, 3362))

    with pytest.raises(LostMessages, match=r"o2c\.orders/10: offsets 3363\.\.3363"):
        continuity.check(records("o2c.orders", 10, 3364))


def test_a_skip_inside_one_batch_is_found_too() -> None:
    with pytest.raises(LostMessages, match=r"offsets 8\.\.9"):
        Continuity(lambda: 1).check(records("o2c.payments", 2, 7, 10))


def test_offsets_read_again_after_a_seek_back_are_not_a_loss() -> None:
    continuity = Continuity(lambda: 1)
    continuity.check(records("o2c.orders", 0, 5, 6, 7))
    continuity.check(records("o2c.orders", 0, 5, 6, 7, 8))


def test_a_jump_across_a_rebalance_is_not_a_loss() -> None:
    generation = [1]
    continuity = Continuity(lambda: generation[0])
    continuity.check(records("o2c.orders", 0, 5))
    generation[0] = 2  # another worker had the partition and moved its offset on
    continuity.check(records("o2c.orders", 0, 90))


def test_holes_in_a_compacted_topic_are_expected() -> None:
    continuity = Continuity(lambda: 1, compacted=frozenset({"o2c.customers"}))
    continuity.check(records("o2c.customers", 0, 1, 5, 9))


def test_a_lost_message_is_found_before_the_batch_is_handled() -> None:
    handled: list[Sequence[Any]] = []

    async def handle(batch: Sequence[Any]) -> None:
        handled.append(batch)

    continuity = Continuity(lambda: 1)
    asyncio.run(continuity.then(records("o2c.orders", 0, 1), handle))
    with pytest.raises(LostMessages):
        asyncio.run(continuity.then(records("o2c.orders", 0, 3), handle))
    assert len(handled) == 1
