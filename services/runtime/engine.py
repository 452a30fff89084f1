"""The worker process's loop: one consumer in the application's group, every processor's
tasks, and the commit protocol.

Each round: take what the consumer has fetched (without waiting once something came),
put each record in the buffers of the tasks that read its partition, let each task
handle what event-time order allows, then commit:

  at_least_once (default)
    1. flush the producer: every output, copy, dead letter and re-routed record of the
       round is acknowledged by the broker (acks=all);
    2. produce the round's state changes to the changelogs and flush again. Only now:
       a changelog record whose outputs were lost would make the redelivered event a
       no-op, and its outputs would never be sent;
    3. commit the input offsets: per partition, the first record some task has not
       handled yet, so no path can acknowledge a record that was not handled;
    4. write the state changes to RocksDB with the changelog offset they reach.
  A crash anywhere re-runs the round from the committed offsets; states record the
  event ids they applied and outputs carry ids derived from their causes, so the effect
  stays exactly once at every edge users see.

  exactly_once
    the round's records, changelog records and input offsets are one Kafka transaction
    (KIP-447); step 4 follows the commit.

Partitions are assigned with the range assignor: it gives one member partition p of
every topic it subscribes to, which is what a task needs (librdkafka has no pluggable
assignor, and cooperative-sticky balances each topic's partitions separately, which
would split a task's inputs between processes).
"""

from __future__ import annotations

import gc
import logging
import signal
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from schemas.codec import InvalidEvent
from schemas.topics import (
    CHANGELOG_TOMBSTONE_RETENTION_MS,
    OUTPUT_MAX_MESSAGE_BYTES,
    Role,
    Topic,
    changelog_topic,
    rerouted_topic,
)
from services import kafka_io, metrics
from services.connections import ServiceUnreachable, require_kafka, wait_for
from services.runtime.delivery import Delivery
from services.runtime.edge import RawMessage, admit, masked_value
from services.runtime.partitioning import partition_of
from services.runtime.processor import (
    Outputs,
    Processor,
    ProcessorSpec,
    TaskView,
    observe_latency,
    send_dead_letter,
)
from services.runtime.store import Memory, Store
from services.runtime.tasks import Item, TaskState, TopicPartitionKey
from services.settings import Settings

log = logging.getLogger(__name__)

# The exit status of a worker stopped by a failure inside a core (EX_SOFTWARE): its batch
# was not committed, and its successor handles it again.
CORE_FAILED = 70
# Headers a re-routed record carries: where it was published.
ORIGIN_TOPIC = "o2c-origin-topic"
ORIGIN_PARTITION = "o2c-origin-partition"
ORIGIN_OFFSET = "o2c-origin-offset"
# A task's buffer of one partition above this pauses the partition; below LOW resumes it.
# Low, with a shallow prefetch (PREFETCH): the consumer's queue is one FIFO for every
# partition, so a backlog fetched ahead puts the other processors' new records behind it.
# Measured with 80,000 balance.changed copies waiting for credit and suspense, the
# ledger's p99 at 500 events/s: 2.9 s at 5,000 and librdkafka's prefetch, 0.5 s at 500.
BUFFER_HIGH = 500
BUFFER_LOW = 100
PREFETCH = 500  # records per partition librdkafka keeps fetched (queued.min.messages)
# How long one processor may hold a round while others wait: a processor that falls
# behind costs the others this much latency, not its whole backlog (25 ms measured a p99
# of 870 ms at 2,000 events/s offered, 5 ms 573 ms).
PROCESSOR_SLICE_SECONDS = 0.005
# How long a task waits for a just assigned input that has not given a record yet, while
# the broker has some or has not said: long enough for a first fetch, so that a replay
# starts in event-time order.
UNKNOWN_IDLE_SECONDS = 2.0
REROUTE_NOTICE_SECONDS = 60.0
STATS_SECONDS = 10.0
GC_FREEZE_SECONDS = 10.0
# The collector's youngest generation is collected after this many new container objects
# (CPython's default 700): the cores allocate many short-lived tuples and dataclasses per
# event and build no cycles, so most young collections find nothing to free. All cores on
# the accuracy stream, interleaved (docs/performance.md, "Third round"): 6,558 -> 6,868
# and 7,466 -> 8,267 events per CPU second with 50,000 and the survivors frozen.
GC_GEN0_THRESHOLD = 50_000


class LoopStats:
    """What the loop did, logged every STATS_SECONDS: where a slow worker's time goes."""

    def __init__(self) -> None:
        self._reset(time.monotonic())

    def _reset(self, now: float) -> None:
        self.since = now
        self.records = self.batches = self.handled = self.empty_polls = self.waiting_polls = 0
        self.poll_seconds = self.commit_seconds = 0.0
        self.steps: dict[str, float] = {}

    def polled(self, seconds: float, records: int, waiting: bool) -> None:
        self.poll_seconds += seconds
        self.records += records
        self.empty_polls += not records
        self.waiting_polls += waiting

    def step(self, name: str, since: float) -> float:
        """Count the time since `since` to a step of the commit; returns now."""
        now = time.monotonic()
        self.steps[name] = self.steps.get(name, 0.0) + now - since
        return now

    def committed(self, seconds: float) -> None:
        self.batches += 1
        self.commit_seconds += seconds

    def maybe_log(self) -> None:
        now = time.monotonic()
        span = now - self.since
        if span < STATS_SECONDS:
            return
        if self.records or self.handled:
            log.info(
                "last %.0fs: %d records in, %d handled, %d commits (%.0f records each); "
                "%.0f%% of the time polling (%d empty polls, %d while a task waited), "
                "%.0f%% committing (%s)",
                span,
                self.records,
                self.handled,
                self.batches,
                self.handled / max(self.batches, 1),
                100 * self.poll_seconds / span,
                self.empty_polls,
                self.waiting_polls,
                100 * self.commit_seconds / span,
                ", ".join(f"{name} {100 * t / span:.0f}%" for name, t in self.steps.items()),
            )
        self._reset(now)


class CoreFailed(Exception):
    """A core raised: a bug, not bad input. The round is not committed."""


class Runtime:
    def __init__(self, settings: Settings, specs: Sequence[ProcessorSpec[Any]]) -> None:
        self.settings = settings
        self.specs = list(specs)
        self.partitions = settings.topic_partitions
        self.exactly_once = settings.processing_guarantee == "exactly_once"
        self.delivery = Delivery(
            settings.kafka_bootstrap,
            transactional_id=f"{settings.app_id}-{settings.instance_id}"
            if self.exactly_once
            else None,
        )
        self.memory = Memory(settings.rocksdb_write_buffer_mb, settings.rocksdb_block_cache_mb)
        # One directory per process: processes of one machine hand tasks to each other in a
        # rebalance, and one may still hold a task's database open when the next opens it.
        self.state_dir = Path(settings.state_dir) / settings.app_id / settings.instance_id
        self.processors: dict[str, Processor] = {s.name: s.build() for s in self.specs}
        self.outputs = {s.name: Outputs(s.name, settings.source, self.delivery) for s in specs}
        self.readers: dict[str, list[ProcessorSpec[Any]]] = {}
        for spec in self.specs:
            for topic in spec.inputs:
                self.readers.setdefault(topic.name, []).append(spec)
        # Inputs whose records must sit on murmur2(key)'s partition: those a stateful
        # processor reads. Others (bank lines, read by the stateless router) are fine
        # wherever a producer put them.
        self.placed: set[str] = {
            t.name
            for s in self.specs
            if s.stateful
            for t in s.inputs
            if t.role is Role.INPUT and t.partitions == self.partitions
        }
        self.rerouted = rerouted_topic(settings.app_id, self.partitions)
        self.topics = sorted({*self.readers, self.rerouted.name})
        self.tasks: dict[tuple[str, int], TaskState] = {}
        self.stores: dict[tuple[str, int], Store[Any]] = {}  # open, by (store name, partition)
        self.committed: dict[TopicPartitionKey, int] = {}
        self.paused: set[TopicPartitionKey] = set()
        self.assignment: list[TopicPartition] = []
        # Partitions a record came from since they were assigned: a partition not among them
        # has its first fetch still to come.
        self.started: set[TopicPartitionKey] = set()
        self.stopping = False
        self.ready = False
        self.max_idle = settings.max_task_idle_ms / 1000
        self.last_poll = time.monotonic()
        self._rerouted_since_notice: dict[str, int] = {}
        self._last_notice = 0.0
        self._lag_reported = 0.0
        self._frozen_at = 0.0
        self._rounds = 0
        self.stats = LoopStats()
        self.commit_interval = settings.commit_interval_ms / 1000
        self._pending = False  # handled or taken in records since the last commit
        self._last_commit = 0.0
        self._consumer: Consumer | None = None
        self._restorer: Consumer | None = None

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> int:
        for name in (signal.SIGTERM, signal.SIGINT):
            signal.signal(name, self._stop)
        gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
        self._ensure_topics()
        consumer = self._consumer = self._new_consumer()
        consumer.subscribe(
            self.topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )
        log.info("joining group %s for %d topics", self.settings.app_id, len(self.topics))
        try:
            while not self.stopping:
                self._round()
            self._commit_pending()
            log.info("stopping: what was handled is committed")
            return 0
        except CoreFailed:
            log.critical("stopping without committing the batch: a core failed (see above)")
            return CORE_FAILED
        finally:
            self._close()

    def _ensure_topics(self) -> None:
        """Create the application's own topics, waiting for a broker that is not up yet."""
        bootstrap = self.settings.kafka_bootstrap

        def ensure() -> None:
            require_kafka(bootstrap)
            try:
                kafka_io.ensure_topics(bootstrap, [self.rerouted, *self._changelogs()])
            except KafkaException as exc:  # a broker still starting: wait for it too
                raise ServiceUnreachable("Kafka", bootstrap, str(exc)) from exc

        wait_for(
            ensure,
            "worker",
            log,
            bootstrap=bootstrap,
            conninfo=self.settings.database_url,
            stopping=lambda: self.stopping,
        )

    def _round(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        # Block for new records only when no task has anything buffered to handle; a task
        # that waits for a silent input asks again in a millisecond.
        waiting = busy = False
        for task in self.tasks.values():
            if task.waiting_since is not None:
                waiting = True
            elif task.buffered:
                busy = True
                break
        polled = time.monotonic()
        first = consumer.poll(0 if busy else 0.001 if waiting else 0.1)
        self.last_poll = time.monotonic()
        messages: list[Message] = []
        if first is not None:
            messages.append(first)
            messages.extend(consumer.consume(self.settings.batch_max_events, 0))
        self.stats.polled(self.last_poll - polled, len(messages), waiting)
        for message in messages:
            self._take(message)
        handled = self._run_tasks()
        self.stats.handled += handled
        self._pending = self._pending or bool(messages or handled)
        if self._pending and time.monotonic() - self._last_commit >= self.commit_interval:
            self._commit_pending()
        self._apply_backpressure()
        self._notice_rerouted()
        self._report_lag()
        self._freeze_survivors()
        self.stats.maybe_log()

    def _freeze_survivors(self) -> None:
        """Every GC_FREEZE_SECONDS, move what survived into the collector's permanent
        generation: a full collection then does not walk every cached state (one took 100+
        ms, the worker's p99 at 500 events/s). The cores build no reference cycles, so
        freezing leaks nothing that reference counting would not free anyway."""
        now = time.monotonic()
        if now - self._frozen_at < GC_FREEZE_SECONDS:
            return
        self._frozen_at = now
        gc.collect(1)
        gc.freeze()

    def _commit_pending(self) -> None:
        if not self._pending:
            return
        committing = time.monotonic()
        self._commit()
        self._pending = False
        self._last_commit = time.monotonic()
        self.stats.committed(self._last_commit - committing)

    # --- taking records in ---------------------------------------------------------------

    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                level = logging.WARNING if error.retriable() else logging.ERROR
                log.log(level, "consumer: %s", error)
            return
        topic = message.topic() or ""
        partition = message.partition() or 0
        offset = message.offset() or 0
        where = (topic, partition)
        self.started.add(where)
        headers = _headers(message)
        key = message.key()
        if topic == self.rerouted.name:
            origin = dict(headers)
            raw = RawMessage(
                topic=origin.get(ORIGIN_TOPIC, b"").decode(),
                partition=int(origin.get(ORIGIN_PARTITION, b"0")),
                offset=int(origin.get(ORIGIN_OFFSET, b"0")),
                key=key,
                value=message.value(),
                timestamp=_timestamp(message),
                headers=headers,
            )
        else:
            if topic in self.placed and key is not None:
                right = partition_of(key, self.partitions)
                if right != partition:
                    self._reroute(message, right, headers)
                    return
            raw = RawMessage(topic, partition, offset, key, message.value(), _timestamp(message))
            if headers:
                raw = RawMessage(topic, partition, offset, key, raw.value, raw.timestamp, headers)
        try:
            raw, event = admit(raw)  # card numbers masked before any task sees the record
        except InvalidEvent as problem:
            send_dead_letter(self.delivery, raw, problem, self.settings.source)
            return
        item = Item(where, offset, raw, event)
        for spec in self.readers.get(raw.topic, ()):
            task = self.tasks.get((spec.name, partition))
            if task is not None:
                task.buffers[where].append(item)

    def _reroute(self, message: Message, partition: int, headers: tuple[Any, ...]) -> None:
        """A record a producer put on another partition than the contract's goes to its
        task through the re-routed topic: a wrong partitioner costs a hop."""
        topic = message.topic() or ""
        origin = [
            (ORIGIN_TOPIC, topic.encode()),
            (ORIGIN_PARTITION, str(message.partition()).encode()),
            (ORIGIN_OFFSET, str(message.offset()).encode()),
        ]
        at = RawMessage(
            topic, message.partition() or 0, message.offset() or 0, message.key(),
            message.value(), _timestamp(message), headers,
        )  # fmt: skip
        self.delivery.produce(
            self.rerouted.name,
            message.key(),
            masked_value(at),  # an internal copy of ours: no card numbers in it
            partition=partition,
            headers=[*headers, *origin],
        )
        metrics.REROUTED.labels(topic).inc()
        self._rerouted_since_notice[topic] = self._rerouted_since_notice.get(topic, 0) + 1

    def _notice_rerouted(self) -> None:
        now = time.monotonic()
        if not self._rerouted_since_notice or now - self._last_notice < REROUTE_NOTICE_SECONDS:
            return
        counts = ", ".join(f"{n} on {t}" for t, n in sorted(self._rerouted_since_notice.items()))
        log.warning(
            "re-routed records a producer put on another partition than murmur2(key) "
            "mod %d (%s); they are handled correctly, one hop later. Fix: produce with "
            "the Java client's partitioner (librdkafka: partitioner=murmur2_random)",
            self.partitions,
            counts,
        )
        self._rerouted_since_notice.clear()
        self._last_notice = now

    # --- handling ------------------------------------------------------------------------

    def _run_tasks(self) -> int:
        handled = 0
        caught_up = self._caught_up_cache()
        self._rounds += 1
        for spec in self.specs:
            tasks = [t for t in self.tasks.values() if t.spec is spec and t.buffered]
            if not tasks:
                continue
            # A processor's slice may end before its last task: start elsewhere each round.
            turn = self._rounds % len(tasks)
            tasks = tasks[turn:] + tasks[:turn]
            if spec.before_batch is not None:
                spec.before_batch()
            processor = self.processors[spec.name]
            deadline = time.monotonic() + PROCESSOR_SLICE_SECONDS
            for task in tasks:
                handled += self._run_task(task, processor, caught_up, deadline)
        return handled

    def _run_task(
        self,
        task: TaskState,
        processor: Processor,
        caught_up: Any,
        deadline: float,
    ) -> int:
        handled = 0
        limit = self.settings.batch_max_events
        view = task.view
        while handled < limit:
            now = time.monotonic()
            if handled and now > deadline:
                break
            buffer = task.next_buffer(now, caught_up, self.max_idle, UNKNOWN_IDLE_SECONDS)
            if buffer is None:
                break
            item = buffer[0]
            view.cause_time = item.time
            try:
                processor.handle(view, item.message, item.event)
            except Exception as exc:
                self._core_failed(task, item, exc)
            buffer.popleft()
            handled += 1
        return handled

    def _core_failed(self, task: TaskState, item: Item, exc: Exception) -> None:
        where = f"{item.message.topic}/{item.message.partition}/{item.message.offset}"
        if self.settings.on_core_error == "dead-letter":
            log.exception(
                "%s: the core failed on event %s (%s)", task.spec.name, item.event.id, where
            )
            problem = InvalidEvent.single(
                "", f"internal error applying the event: {exc!r}", item.event.id
            )
            send_dead_letter(self.delivery, item.message, problem, self.settings.source)
            return
        log.critical(
            "%s: the core failed on event %s (%s) of type %s:\n%s",
            task.spec.name,
            item.event.id,
            where,
            item.event.type,
            traceback.format_exc(),
        )
        raise CoreFailed from exc

    def _caught_up_cache(self) -> Any:
        """Whether each partition has given everything the broker held at its last fetch
        (None: never reported), asked once a round per partition."""
        consumer = self._consumer
        assert consumer is not None
        known: dict[TopicPartitionKey, bool | None] = {}

        def caught_up(where: TopicPartitionKey) -> bool | None:
            if where not in known:
                try:
                    low, high = consumer.get_watermark_offsets(TopicPartition(*where), cached=True)
                except KafkaException:
                    low = high = -1
                if high < 0:
                    known[where] = None  # no fetch has answered for it yet
                elif where in self.started:
                    known[where] = self._position(where, low, high) >= high
                elif self._start(where, low, high) >= high:
                    known[where] = True
                else:
                    # Nothing received since it was assigned, and records wait on the broker:
                    # its first fetch is still to come, so wait as for one never reported.
                    known[where] = None
            return known[where]

        return caught_up

    def _position(self, where: TopicPartitionKey, low: int, high: int) -> int:
        """The next offset the consumer gives from `where`: its position (past transaction
        markers), else where it started."""
        consumer = self._consumer
        assert consumer is not None
        (found,) = consumer.position([TopicPartition(*where)])
        return int(found.offset) if found.offset >= 0 else self._start(where, low, high)

    def _start(self, where: TopicPartitionKey, low: int, high: int) -> int:
        """Where the consumer started `where`: the group's committed offset, else where a
        new group starts."""
        if where in self.committed:
            return self.committed[where]
        return low if self.settings.auto_offset_reset == "earliest" else high

    # --- committing ----------------------------------------------------------------------

    def _commit(self) -> None:
        started = time.monotonic()
        self.delivery.flush()
        self.stats.step("outputs acknowledged", started)
        for outputs in self.outputs.values():
            observe_latency(outputs)
        if not self.exactly_once and time.monotonic() - self.last_poll > self._session_timeout():
            # Acknowledgements took longer than the group waits for a member: the tasks
            # may be another worker's by now, and a changelog write from here could land
            # after theirs. Hand the round back instead; its outputs repeat with their ids.
            log.warning("the broker took %.0fs to acknowledge; rejoining", started - self.last_poll)
            self._rewind()
            return
        step = time.monotonic()
        changed = self._produce_changes()
        offsets = self._offsets_to_commit()
        step = self.stats.step("changes serialised", step)
        if self.exactly_once:
            consumer = self._consumer
            assert consumer is not None
            if changed:
                self.delivery.flush()
            try:
                self.delivery.commit_transaction(offsets, consumer.consumer_group_metadata())
            except KafkaException as exc:
                error = exc.args[0]
                if error.fatal():
                    raise
                log.warning("transaction aborted (%s); the batch is handled again", error)
                self.delivery.abort_transaction()
                self._rewind()
                return
        else:
            if changed:
                self.delivery.flush()
            step = self.stats.step("changelog acknowledged", step)
            self._commit_offsets(offsets)
        step = self.stats.step("offsets committed", step)
        for tp in offsets:
            self.committed[(tp.topic, tp.partition)] = tp.offset
        acknowledged = self.delivery.take_offsets()
        for (name, partition), store in self.stores.items():
            if store.dirty:
                last = acknowledged.get((self._changelog_name(name), partition))
                store.checkpoint(None if last is None else last + 1)
        self.stats.step("checkpointed", step)
        metrics.COMMIT_SECONDS.observe(time.monotonic() - started)

    def _produce_changes(self) -> bool:
        produced = False
        for (name, partition), store in self.stores.items():
            if not store.dirty:
                continue
            topic = self._changelog_name(name)
            for key, value in store.changes():
                self.delivery.produce(topic, key, value, partition=partition)
                produced = True
        return produced

    def _offsets_to_commit(self) -> list[TopicPartition]:
        """Per consumed partition, the first record a task has not handled yet, else the
        consumer's position (past transaction markers, which a record's offset + 1 is
        not): never past a record that was not handled."""
        consumer = self._consumer
        assert consumer is not None
        positions: dict[TopicPartitionKey, int] = {}
        for tp in consumer.position(self.assignment):
            if tp.offset >= 0:
                positions[(tp.topic, tp.partition)] = tp.offset
        for task in self.tasks.values():
            for where in task.buffers:
                pending = task.position(where)
                if pending is not None and pending < positions.get(where, pending + 1):
                    positions[where] = pending
        return [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in positions.items()
            if self.committed.get((topic, partition)) != offset
        ]

    def _commit_offsets(self, offsets: list[TopicPartition]) -> None:
        if not offsets:
            return
        consumer = self._consumer
        assert consumer is not None
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # A rebalance took the partitions: their new owner handles the round again,
            # finding its state already in the changelog (no effect twice).
            log.warning("offsets not committed (%s); the new owner repeats them", exc.args[0])

    def _rewind(self) -> None:
        """Forget the round: state changes, buffers, and the consumer's positions go back
        to the last commit."""
        for store in self.stores.values():
            store.discard()
        for task in self.tasks.values():
            task.clear()
        consumer = self._consumer
        assert consumer is not None
        assigned = consumer.assignment()
        self._learn_committed(consumer, assigned)
        start = OFFSET_BEGINNING if self.settings.auto_offset_reset == "earliest" else OFFSET_END
        for tp in assigned:
            offset = self.committed.get((tp.topic, tp.partition), start)
            try:
                consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException as exc:
                log.warning("could not seek %s/%d back: %s", tp.topic, tp.partition, exc)
        self.started.clear()

    def _report_lag(self) -> None:
        """Records on the broker each consumed partition has not given yet, once a second."""
        now = time.monotonic()
        if now - self._lag_reported < 1.0:
            return
        self._lag_reported = now
        consumer = self._consumer
        assert consumer is not None
        for task in self.tasks.values():
            for where in task.buffers:
                try:
                    low, high = consumer.get_watermark_offsets(TopicPartition(*where), cached=True)
                except KafkaException:
                    continue
                if high >= 0:
                    behind = max(0, high - self._position(where, low, high))
                    metrics.LAG.labels(*where[:1], str(where[1])).set(behind)

    # --- back-pressure -------------------------------------------------------------------

    def _apply_backpressure(self) -> None:
        """Pause a partition whose records wait in some task's buffer; others go on."""
        consumer = self._consumer
        assert consumer is not None
        deepest: dict[TopicPartitionKey, int] = {}
        for task in self.tasks.values():
            for where, buffer in task.buffers.items():
                deepest[where] = max(deepest.get(where, 0), len(buffer))
        pause = [w for w, n in deepest.items() if n > BUFFER_HIGH and w not in self.paused]
        resume = [w for w in self.paused if deepest.get(w, 0) <= BUFFER_LOW]
        if pause:
            consumer.pause([TopicPartition(*w) for w in pause])
            self.paused.update(pause)
        if resume:
            consumer.resume([TopicPartition(*w) for w in resume])
            self.paused.difference_update(resume)

    # --- rebalances and state ------------------------------------------------------------

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assignment = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        numbers: dict[str, set[int]] = {}
        for tp in partitions:
            numbers.setdefault(tp.topic, set()).add(tp.partition)
        kept = dict(self.stores)
        self.stores = {}
        for spec in self.specs:
            mine = set().union(*(numbers.get(t.name, set()) for t in spec.inputs))
            for partition in sorted(mine):
                self._create_task(spec, partition, kept)
        for store in kept.values():
            store.close()
        self._restore()
        # librdkafka keeps a partition paused across an eager reassignment; what this
        # process paused before the rebalance would otherwise never be resumed.
        consumer.resume(partitions)
        self.paused.clear()
        self._learn_committed(consumer, partitions)
        log.info(
            "assigned %d partitions: %d tasks (%s)",
            len(partitions),
            len(self.tasks),
            ", ".join(
                f"{s.name} {sorted(p for n, p in self.tasks if n == s.name)}" for s in self.specs
            ),
        )
        if not self.ready:
            self.ready = True
            log.info("Worker ready")

    def _learn_committed(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Where the group left each partition: the position of a partition nothing has
        arrived from yet, for the event-time merge's question whether it is caught up."""
        self.committed = {}
        for tp in _committed(consumer, partitions):
            if tp.offset >= 0:
                self.committed[(tp.topic, tp.partition)] = tp.offset

    def _create_task(
        self, spec: ProcessorSpec[Any], partition: int, kept: dict[tuple[str, int], Store[Any]]
    ) -> None:
        store: Store[Any] | None = None
        if spec.store is not None:
            place = (spec.store.name, partition)
            store = kept.pop(place, None) or Store(
                spec.store, self.state_dir / spec.store.name / str(partition), self.memory
            )
            self.stores[place] = store
        task = TaskState(spec, partition, TaskView(partition, store, self.outputs[spec.name]))
        for topic in spec.inputs:
            if topic.partitions > partition:
                task.add_input((topic.name, partition))
        if any(t.name in self.placed for t in spec.inputs):
            task.add_input((self.rerouted.name, partition))
        self.tasks[(spec.name, partition)] = task

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # What was handled is committed before the partitions go; records still buffered
        # were not handled, and their partitions' next owner reads them again.
        self._commit_pending()
        self._forget(partitions)
        log.info("revoked %d partitions", len(partitions))

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Another member may own them already: nothing handled since the last commit may be
        # written now. Its outputs were sent; its successor sends them again, same ids.
        if self.exactly_once:
            self.delivery.abort_transaction()
        for store in self.stores.values():
            store.discard()
        self._pending = False
        self._forget(partitions)
        log.warning("lost %d partitions (session timed out)", len(partitions))

    def _forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            place = (tp.topic, tp.partition)
            self.committed.pop(place, None)
            self.paused.discard(place)
        self.tasks.clear()  # the range assignor's rebalances are eager: all go, some return
        self.assignment = []
        self.started.clear()

    def _restore(self) -> None:
        """Bring every store up to the end of its changelog, from its checkpoint on."""
        if not self.stores:
            return
        reading: dict[str, Any] = {
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
        restorer = self._restorer = self._restorer or kafka_io.consumer(
            self.settings.kafka_bootstrap, f"{self.settings.app_id}-restore", **reading
        )
        started = time.monotonic()
        starts: dict[TopicPartitionKey, int] = {}
        targets: dict[TopicPartitionKey, Store[Any]] = {}
        for (name, partition), store in self.stores.items():
            where = (self._changelog_name(name), partition)
            low, high = kafka_io.watermarks(restorer, TopicPartition(*where))
            begin = store.checkpointed()
            if begin > high:
                log.warning(
                    "%s/%d: checkpoint %d past the changelog's end %d; restoring anew",
                    *where,
                    begin,
                    high,
                )
                store.wipe()
                begin = 0
            elif begin > 0 and _missed_tombstones(store.checkpointed_at()):
                log.warning(
                    "%s/%d: checkpoint older than the changelog keeps deletions; restoring anew",
                    *where,
                )
                store.wipe()
                begin = 0
            begin = max(begin, low)
            if begin < high:
                starts[where] = begin
                targets[where] = store
        if not starts:
            return
        restorer.assign([TopicPartition(t, p, o) for (t, p), o in starts.items()])
        pending: dict[TopicPartitionKey, list[tuple[bytes, bytes | None]]] = {w: [] for w in starts}
        nexts = dict(starts)
        open_ends = set(starts)
        restored = 0
        while open_ends:
            message = restorer.poll(1.0)
            if message is None:
                continue
            where = (message.topic() or "", message.partition() or 0)
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    open_ends.discard(where)
                    continue
                raise KafkaException(error)
            pending[where].append((message.key() or b"", message.value()))
            nexts[where] = (message.offset() or 0) + 1
            restored += 1
            if len(pending[where]) >= 10_000:
                targets[where].restore(pending[where], nexts[where])
                pending[where] = []
        for where, records in pending.items():
            targets[where].restore(records, nexts[where])
        restorer.unassign()
        metrics.RESTORED.inc(restored)
        log.info(
            "restored %d changelog records into %d stores in %.1fs",
            restored,
            len(targets),
            time.monotonic() - started,
        )

    # --- set-up and tear-down ------------------------------------------------------------

    def _changelog_name(self, store: str) -> str:
        return changelog_topic(self.settings.app_id, store).name

    def _changelogs(self) -> list[Topic]:
        return [
            changelog_topic(self.settings.app_id, s.store.name, self.partitions)
            for s in self.specs
            if s.store is not None
        ]

    def _session_timeout(self) -> float:
        return self.settings.session_timeout_seconds

    def _new_consumer(self) -> Consumer:
        s = self.settings
        config: dict[str, Any] = {
            "partition.assignment.strategy": "range",
            "session.timeout.ms": int(s.session_timeout_seconds * 1000),
            "heartbeat.interval.ms": int(min(3.0, s.session_timeout_seconds / 3) * 1000),
            "isolation.level": "read_committed",
            "fetch.max.bytes": OUTPUT_MAX_MESSAGE_BYTES * 4,
            "max.partition.fetch.bytes": OUTPUT_MAX_MESSAGE_BYTES,
            # A fetch returns as soon as anything arrived: latency, not throughput,
            # decides at low rates; at high rates fetches fill up anyway.
            "fetch.wait.max.ms": 100,
        }
        return kafka_io.consumer(
            s.kafka_bootstrap, s.app_id, from_beginning=s.auto_offset_reset == "earliest", **config
        )

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the batch in hand", signum)
        self.stopping = True

    def _close(self) -> None:
        if self.exactly_once:
            self.delivery.abort_transaction()  # a round not committed: its successor redoes it
        if self._consumer is not None:
            self._consumer.close()  # leaves the group; commits nothing by itself
        if self._restorer is not None:
            self._restorer.close()
        for store in self.stores.values():
            store.close()
        self.stores.clear()
        self.delivery.flush()


def _headers(message: Message) -> tuple[tuple[str, bytes], ...]:
    # confluent-kafka gives (str, bytes) pairs, or None for a header without a value.
    found = message.headers()
    return tuple(found) if found else ()  # type: ignore[arg-type]


def _timestamp(message: Message) -> datetime:
    _kind, millis = message.timestamp()
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def _missed_tombstones(checkpointed_at: float | None, now: float | None = None) -> bool:
    """Whether compaction may have dropped deletions made since this checkpoint: it is older
    than the changelog keeps tombstones (an hour's margin), or of unknown age."""
    if checkpointed_at is None:
        return True
    age = (time.time() if now is None else now) - checkpointed_at
    return age > CHANGELOG_TOMBSTONE_RETENTION_MS / 1000 - 3600


_COORDINATOR_MOVING = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)


def _committed(
    consumer: Consumer, partitions: list[TopicPartition], attempts: int = 60
) -> list[TopicPartition]:
    """The group's committed offsets, asked again while its coordinator moves or loads: a
    broker just started again answers NOT_COORDINATOR for a while, which must not end the
    worker (the fault suite's broker kill did)."""
    for attempt in range(attempts):
        try:
            found: list[TopicPartition] = consumer.committed(partitions, timeout=30)
            return found
        except KafkaException as exc:
            error = exc.args[0]
            if attempt == attempts - 1 or not (
                error.retriable() or error.code() in _COORDINATOR_MOVING
            ):
                raise
            log.warning("committed offsets not available yet (%s); asking again", error)
            time.sleep(1.0)
    raise AssertionError("unreachable")
