"""Stop the worker when faust loses an input message on its way to an agent.

faust can drop a message it has fetched (a flow suspension or a generation change in the
middle of a fetched batch, a partition paused while its records are handed out); it then
sees a jump in the partition's offsets, records it as a gap, as it would for a compacted
range, and later commits past it as if the message had been handled. Seen by the SIGKILL
recovery test: a restarted worker handled an order's placement and every later message of
the partition but never the amendment in between.

An agent receives every offset of a partition it reads, in order, except on compacted
topics. So a jump within one consumer generation means a message was lost. Stopping the
worker before the batch is acknowledged keeps the committed offset at or before the hole
(faust commits a gap only up to its highest acknowledged offset), and the next worker
reads the lost message again: a restart instead of a silent loss.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from schemas.topics import ALL_TOPICS

BatchHandler = Callable[[Sequence[Any]], Awaitable[None]]
# A compacted topic has holes by design.
COMPACTED = frozenset(t.name for t in ALL_TOPICS if t.compacted)


class LostMessages(RuntimeError):
    pass


class Continuity:
    """The next offset each partition of one agent's stream should deliver."""

    def __init__(self, generation: Callable[[], int], compacted: frozenset[str] = COMPACTED):
        self._generation = generation  # the consumer group generation now
        self._compacted = compacted
        self._seen_in = -1
        self._next: dict[tuple[str, int], int] = {}

    def check(self, records: Sequence[Any]) -> None:
        """Raise LostMessages if `records` skip an offset of a partition; else remember
        where each partition is."""
        generation = self._generation()
        if generation != self._seen_in:
            # A rebalance moves partitions to their committed offsets, which another
            # worker may have advanced: no jump is a loss across it.
            self._next.clear()
            self._seen_in = generation
        for record in records:
            message = record.message
            if message.topic in self._compacted:
                continue
            tp = (message.topic, message.partition)
            expected = self._next.get(tp)
            if expected is not None and message.offset > expected:
                raise LostMessages(
                    f"{message.topic}/{message.partition}: offsets {expected}.."
                    f"{message.offset - 1} were fetched but never delivered; stopping so "
                    "that the next worker reads them again"
                )
            self._next[tp] = message.offset + 1

    async def then(self, records: Sequence[Any], handle: BatchHandler) -> None:
        """Check `records`, then handle them: one awaitable for `or_stop`, so a loss stops
        the worker before faust acknowledges the batch."""
        self.check(records)
        await handle(records)
