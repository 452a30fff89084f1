"""A task: one processor's partition p of every input, merged in event-time order.

Records of one partition keep their offset order. Among the heads of the task's input
partitions the runtime hands the core the record with the smallest (event time, topic
rank, offset), so that a replay from offset 0 of topics read at different speeds gives
the same sequence of outputs, and an order cancelled before it was paid is never matched
on the way. A partition with nothing buffered holds the task back while it may still
have something older to give: while the broker holds more of it than the task has seen
(its high watermark, as the last fetch reported it), for at most `max_idle` seconds; and
just assigned, before its first record or its first fetch, for at most `unknown_idle`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from schemas.base import CloudEvent
from services.runtime.edge import RawMessage
from services.runtime.processor import ProcessorSpec, TaskView

TopicPartitionKey = tuple[str, int]  # (topic, partition) as consumed


class Item:
    """A consumed, validated record waiting in a task's buffer."""

    __slots__ = ("event", "message", "offset", "time", "where")

    def __init__(
        self, where: TopicPartitionKey, offset: int, message: RawMessage, event: CloudEvent
    ) -> None:
        self.where = where
        self.offset = offset
        self.message = message
        self.event = event
        self.time = event.time.timestamp()


# What the runtime knows of a partition it consumes: None while it has never reported a
# high watermark, else whether everything the broker held at the last fetch has arrived.
CaughtUp = Callable[[TopicPartitionKey], bool | None]


@dataclass
class TaskState:
    spec: ProcessorSpec[object]
    partition: int
    view: TaskView
    # Buffered records per consumed partition, in rank order (the spec's input order, the
    # re-routed topic last).
    buffers: dict[TopicPartitionKey, deque[Item]] = field(default_factory=dict)
    ranks: dict[TopicPartitionKey, int] = field(default_factory=dict)
    waiting_since: float | None = None  # when an empty input first held the task back

    def add_input(self, where: TopicPartitionKey) -> None:
        if where not in self.buffers:
            self.ranks[where] = len(self.buffers)
            self.buffers[where] = deque()

    @property
    def buffered(self) -> int:
        return sum(len(b) for b in self.buffers.values())

    def next_buffer(
        self, now: float, caught_up: CaughtUp, max_idle: float, unknown_idle: float
    ) -> deque[Item] | None:
        """The buffer whose head comes next in event-time order, or None when the task
        has nothing to do or must wait for an input that may hold something older."""
        best: deque[Item] | None = None
        best_key: tuple[float, int, int] | None = None
        patience = -1.0  # how long an empty input may hold the task back; <0: not at all
        for where, buffer in self.buffers.items():
            if buffer:
                head = buffer[0]
                key = (head.time, self.ranks[where], head.offset)
                if best_key is None or key < best_key:
                    best, best_key = buffer, key
                continue
            state = caught_up(where)
            if state is None:
                patience = max(patience, unknown_idle)
            elif not state:
                patience = max(patience, max_idle)
        if best is None:
            self.waiting_since = None
            return None
        if patience < 0:
            self.waiting_since = None
            return best
        if self.waiting_since is None:
            self.waiting_since = now
        if now - self.waiting_since >= patience:
            return best  # waited long enough: go on without the silent input
        return None

    def position(self, where: TopicPartitionKey) -> int | None:
        """The offset of the first record of `where` this task has not handled yet."""
        buffer = self.buffers.get(where)
        return buffer[0].offset if buffer else None

    def clear(self) -> None:
        for buffer in self.buffers.values():
            buffer.clear()
        self.waiting_since = None
