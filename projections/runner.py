"""The projection process: a confluent-kafka consumer feeding the read models.

Exactly-once effect without Kafka transactions: the rows of a batch and the offsets the
batch reaches are committed in one PostgreSQL transaction, and on partition assignment the
consumer seeks to the offsets stored there (Kafka's committed offsets are never used).
A batch that was written but not committed (crash, lost connection) is rolled back and
read again; a message below the stored offset is skipped; an event whose id was already
applied (republished by a restarted processor) is skipped. Invalid messages go to the
dead-letter topic, acknowledged by the broker before the offsets move past them.
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from projections import alerts, metrics
from projections.model import PROJECTED_TYPES, TOPICS, project
from projections.store import Position, Store
from schemas.base import CloudEvent
from schemas.codec import InvalidEvent
from schemas.topics import CREDIT, MATCHES, MISMATCHES, Topic
from schemas.trusted import TRUSTED_TYPES, decode_trusted
from services.connections import (
    ServiceUnreachable,
    database_address,
    kafka_config,
    unreachable,
    wait_for,
)
from services.kafka_io import EventProducer
from services.runtime.edge import RawMessage, admit, card_masking, rejection

log = logging.getLogger(__name__)

PROJECTION = "read_models"

# Topics only o2c-matcher writes: their events were validated when they were built.
OWN_OUTPUTS = frozenset(t.name for t in (MATCHES, MISMATCHES, CREDIT))


@dataclass
class Stats:
    messages: int = 0
    applied: int = 0  # events that changed the read models
    duplicates: int = 0  # events whose id was applied before
    dead_letters: int = 0
    batches: int = 0
    reseeks: int = 0
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)


# A batch of 5,000 events makes a few hundred thousand short-lived containers (decoded
# events, rows): at Python's default threshold (700) that is hundreds of collections per
# batch, and every tenth of those walks the older objects too (the contract's models, a
# rebuild's claimed ids). Measured on a real 1,000,000-event log: 15,300 -> 18,500 events/s.
_GC_THRESHOLD = (100_000, 50, 100)
_gc_tuned = False


def tune_gc() -> None:
    """Once per process: the projection's garbage collection thresholds, and what was
    imported so far (modules, models) moved out of the collector's sight."""
    global _gc_tuned
    if _gc_tuned:
        return
    _gc_tuned = True
    gc.set_threshold(*_GC_THRESHOLD)
    gc.freeze()


def raw(message: Message) -> RawMessage:
    _kind, millis = message.timestamp()
    return RawMessage(
        topic=str(message.topic()),
        partition=int(message.partition() or 0),
        offset=int(message.offset() or 0),
        key=_bytes(message.key()),
        value=_bytes(message.value()),
        timestamp=datetime.fromtimestamp(max(millis, 0) / 1000, tz=UTC),
        headers=_headers(message),
    )


def _bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _headers(message: Message) -> tuple[tuple[str, bytes], ...]:
    found: Any = message.headers() or ()
    return tuple((str(k), _bytes(v) or b"") for k, v in found)


def _ce_type(message: Message) -> str | None:
    found: Any = message.headers() or ()
    for key, value in found:
        if key == "ce_type":
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


class ProjectionRunner:
    # What a projection reads and how it writes a batch; the timeline (timeline.py) has its own.
    topics: tuple[Topic, ...] = TOPICS
    projected_types: frozenset[str] = PROJECTED_TYPES
    # Whether this runner's batches and lag are the projections' metrics (one runner's are).
    observed: bool = True

    def __init__(
        self,
        bootstrap: str,
        conninfo: str,
        schema: str,
        *,
        projection: str = PROJECTION,
        group_id: str | None = None,
        batch_max: int = 5000,
        source: str = "o2c-matcher",
        publish_alerts: bool = True,
        trust_own_outputs: bool = True,
        materialise_days: bool = True,
        claims_in_memory: bool = False,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.store = Store(
            conninfo,
            schema,
            projection,
            materialise_days=materialise_days,
            claims_in_memory=claims_in_memory,
        )
        self.batch_max = batch_max
        self.source = source
        self.publish_alerts = publish_alerts
        # Decode o2c-matcher's outputs without validating them again (schemas/trusted.py);
        # upstream facts are always validated in full. False: the bench's baseline.
        self.trust_own_outputs = trust_own_outputs
        # A seam for tests: runs after a batch is written and before it is committed.
        self.before_commit = before_commit
        self.producer = EventProducer(bootstrap)
        self.stats = Stats()
        self._lag_observed = 0.0
        self.positions: dict[Position, int] = {}
        self.stopping = False  # set from another thread (or a signal handler) to end `run`
        from services.settings import get_settings

        # A killed process's partitions wait this long for it (librdkafka's default: 45 s).
        session = get_settings().session_timeout_seconds
        self.consumer = Consumer(
            kafka_config(bootstrap)
            | {
                "group.id": group_id or f"o2c-projection-{schema}-{projection}",
                "session.timeout.ms": int(session * 1000),
                "heartbeat.interval.ms": int(min(3.0, session / 3) * 1000),
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                # Never rows from a worker's aborted transaction (exactly_once).
                "isolation.level": "read_committed",
                "fetch.max.bytes": 64 * 1024 * 1024,
                "max.partition.fetch.bytes": 8 * 1024 * 1024,
            }
        )

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        tune_gc()
        self.positions = self.store.stored_offsets()
        # Only the runner that computes the closed days (not the timeline's, which runs
        # beside it on the same tables, nor a rebuild's, which computes them at its end):
        # computing them from here, mid-replay, would store figures of half a history.
        if self.store.materialise_days and (days := self.store.materialise_missing()):
            log.info("computed DSO and ageing of %d closed days", len(days))
        if self.publish_alerts:
            alerts.publish_pending(self.store, self.producer)
        self.consumer.subscribe([t.name for t in self.topics], on_assign=self._on_assign)

    def close(self) -> None:
        self.consumer.close()
        self.store.close()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = self.store.stored_offsets()
        for tp in partitions:
            tp.offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
            if tp.offset >= 0:
                self.positions[(tp.topic, tp.partition)] = tp.offset
        consumer.assign(partitions)
        log.info("assigned %d partitions, at their stored offsets", len(partitions))

    def run(
        self,
        *,
        until_idle: float | None = None,
        until_offsets: Mapping[Position, int] | None = None,
        max_seconds: float | None = None,
        progress: Callable[[Stats], None] | None = None,
        progress_every: float = 5.0,
    ) -> Stats:
        """Consume until idle for `until_idle` seconds, until every position in
        `until_offsets` is reached, after `max_seconds`, or forever. `progress` is called
        with the stats every `progress_every` seconds and at the end (a rebuild's log)."""
        self.start()
        started = last_message = said = time.monotonic()
        try:
            while True:
                messages = self.consumer.consume(self.batch_max, timeout=0.5)
                now = time.monotonic()
                if messages:
                    last_message = now
                    try:
                        self.handle_batch(messages)
                    except Exception as exc:
                        # Not the messages' fault (database or broker unavailable): nothing
                        # of the batch was committed, so read it again once recovered.
                        log.warning("batch failed (%s); read again once recovered", exc)
                        log.debug("the batch's failure", exc_info=True)
                        self._recover()
                else:
                    self._catch_up_days()
                self._observe_lag()
                if progress is not None and now - said >= progress_every:
                    said = now
                    progress(self.stats)
                if self.stopping:
                    break
                if until_offsets is not None and self.reached(until_offsets):
                    self._catch_up_days()
                    break
                if until_idle is not None and now - last_message >= until_idle:
                    break
                if max_seconds is not None and now - started >= max_seconds:
                    break
        finally:
            self.stats.seconds = time.monotonic() - self.stats.started
            self._observe_lag(force=True)
        if progress is not None:
            progress(self.stats)
        return self.stats

    def _catch_up_days(self) -> None:
        """Compute the closed days whose figures were deferred while catching up."""
        if not self.store.materialise_days:
            return  # a rebuild computes every day once, at its end
        try:
            self.store.materialise_missing()
        except Exception:
            log.exception("computing the closed days failed; trying again later")
            self._recover()

    def _recover(self) -> None:
        """Reconnect and go back to the stored offsets, waiting for the database (or the
        broker) with a growing pause, and saying so once a minute."""

        def reseek() -> None:
            try:
                self.store.reconnect()
                stored = self.store.stored_offsets()
                for tp in self.consumer.assignment():
                    offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
                    self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
                    if offset >= 0:
                        self.positions[(tp.topic, tp.partition)] = offset
            except Exception as exc:
                missing = unreachable(exc, self.bootstrap, self.store.conninfo)
                raise missing or ServiceUnreachable(
                    "PostgreSQL", database_address(self.store.conninfo), str(exc)
                ) from exc

        wait_for(
            reseek,
            "projections",
            log,
            bootstrap=self.bootstrap,
            conninfo=self.store.conninfo,
            stopping=lambda: self.stopping,
        )

    def reached(self, targets: Mapping[Position, int]) -> bool:
        behind = [
            pos for pos, end in targets.items() if end > 0 and self.positions.get(pos, 0) < end
        ]
        if not behind:
            return True
        # A partition whose last offsets hold no message for us (a transaction's commit
        # marker, aborted records) is never reached by the last message's offset + 1: the
        # consumer steps over them, and its position (after every handled batch) says so.
        stepped = self.consumer.position([TopicPartition(t, p) for t, p in behind])
        return all(tp.offset >= targets[(tp.topic, tp.partition)] for tp in stepped)

    # --- one batch --------------------------------------------------------------------------

    def handle_batch(self, messages: Sequence[Message]) -> None:
        ok = [msg for msg in messages if not self._broker_error(msg)]
        if not ok:
            return
        started = time.monotonic()
        with self.store.conn.transaction():
            stored = self.store.stored_offsets(lock=True)
            fresh = self._in_sequence(ok, stored)
            if not fresh:
                return
            events, letters = self._decode(fresh)
            if letters:
                for letter in letters:
                    self.producer.send(letter)
                self.producer.flush()
                self.stats.dead_letters += len(letters)
            new_ids = self.store.claim([e.id for e, _ in events])
            kept = []
            for event, offset in events:
                if event.id in new_ids:
                    new_ids.discard(event.id)  # a second copy within the batch is a duplicate
                    kept.append((event, offset))
            self.stats.duplicates += len(events) - len(kept)
            closed, rows = self.write(kept, catching_up=len(messages) >= self.batch_max)
            reached = {}
            for msg in fresh:
                reached[(str(msg.topic()), int(msg.partition() or 0))] = int(msg.offset() or 0) + 1
            self.store.save_offsets(reached)
            if self.before_commit is not None:
                self.before_commit()
        self.store.committed()
        self.positions.update(reached)
        self.stats.messages += len(fresh)
        self.stats.applied += len(kept)
        self.stats.batches += 1
        if self.observed:
            _observe(fresh, len(kept), len(events) - len(kept), len(letters), rows, started)
        if closed and self.publish_alerts:
            alerts.raise_for_days(self.store, self.producer, closed, self.source)

    def write(
        self, events: list[tuple[CloudEvent, int]], *, catching_up: bool
    ) -> tuple[list[date], int]:
        """Write a batch's new events; returns the business days closed for the first time
        and the number of rows written."""
        changes = project(events)
        return self.store.write(changes, catching_up=catching_up), len(changes)

    def _observe_lag(self, force: bool = False) -> None:
        """Lag from the high watermarks of the last fetch responses: no broker round trip."""
        if not self.observed:
            return
        now = time.monotonic()
        if now - self._lag_observed < 1.0 and not force:
            return
        self._lag_observed = now
        for tp in self.consumer.assignment():
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            position = self.positions.get((tp.topic, tp.partition))
            if high >= 0 and position is not None:
                metrics.LAG.labels(tp.topic, str(tp.partition)).set(max(high - position, 0))

    def _broker_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error, carrying on: %s", error)
        return True

    def _in_sequence(
        self, messages: Sequence[Message], stored: Mapping[Position, int]
    ) -> list[Message]:
        """The messages not yet applied. When a partition's first message is beyond the
        stored offset and that offset is not where this runner left or put the consumer
        (the tables were swapped by a rebuild, or another process moved on), the consumer
        goes back to the stored offset and the batch is dropped. Beyond where this runner
        left it is no gap: a transaction's commit marker or aborted records are offsets no
        consumer is given, and seeking back to them would fetch the same batch for ever."""
        fresh = []
        first: dict[Position, int] = {}
        for m in messages:
            pos = (str(m.topic()), int(m.partition() or 0))
            offset = int(m.offset() or 0)
            at = stored.get(pos)
            if at is not None and offset < at:
                continue  # delivered again; already in the tables
            first.setdefault(pos, offset)
            fresh.append(m)
        behind = {
            pos: stored[pos]
            for pos, offset in first.items()
            if pos in stored and offset > stored[pos] and self.positions.get(pos) != stored[pos]
        }
        if behind:
            self.stats.reseeks += 1
            log.warning("stored offsets differ from the consumer's; seeking to %s", behind)
            for (topic, partition), offset in behind.items():
                self.consumer.seek(TopicPartition(topic, partition, offset))
            self.positions.update(behind)
            return []
        return fresh

    def _decode(
        self, messages: Sequence[Message]
    ) -> tuple[list[tuple[CloudEvent, int]], list[CloudEvent]]:
        events: list[tuple[CloudEvent, int]] = []
        letters: list[CloudEvent] = []
        for m in messages:
            kind = _ce_type(m)
            if kind is not None and kind not in self.projected_types:
                continue  # o2c-matcher's own output of a type no read model uses
            if self.trust_own_outputs and kind in TRUSTED_TYPES and m.topic() in OWN_OUTPUTS:
                try:
                    event = decode_trusted(_bytes(m.value()) or b"")
                except InvalidEvent as exc:
                    letters.append(rejection(raw(m), exc, self.source))
                    continue
                if event.type in PROJECTED_TYPES:
                    # The worker masked what it built from; a person's note has its own.
                    event, _found = card_masking().event(event)
                    events.append((event, int(m.offset() or 0)))
                continue
            message = raw(m)
            try:
                # The worker's edge step: the same masking; the worker warns the producer.
                message, event = admit(message, warn=False)
            except InvalidEvent as exc:
                letters.append(rejection(message, exc, self.source))
                continue
            if event.type in self.projected_types:
                events.append((event, message.offset))
        return events, letters


def _observe(
    fresh: Sequence[Message],
    applied: int,
    duplicates: int,
    letters: int,
    rows: int,
    started: float,
) -> None:
    metrics.BATCHES.inc()
    metrics.BATCH_SECONDS.observe(time.monotonic() - started)
    metrics.ROWS.inc(rows)
    metrics.MESSAGES.labels("applied").inc(applied)
    metrics.MESSAGES.labels("duplicate").inc(duplicates)
    metrics.MESSAGES.labels("dead_letter").inc(letters)
    metrics.MESSAGES.labels("skipped").inc(len(fresh) - applied - duplicates - letters)
    newest = max(msg.timestamp()[1] for msg in fresh)
    metrics.LAST_APPLIED.set(max(newest, 0) / 1000)


def end_positions(bootstrap: str, topics: Sequence[Topic] = TOPICS) -> dict[Position, int]:
    """The end of every partition the projection reads: a rebuild is complete there."""
    from services.kafka_io import end_offsets

    return {
        (tp.topic, tp.partition): tp.offset
        for tp in end_offsets(bootstrap, [t.name for t in topics])
    }


def unique_group(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
