"""Black-box helpers for the runtime's integration tests (issue #16).

Everything here goes through the real broker and the `o2c worker` command: a worker is a
process group started with `o2c worker` (so `--processes N` children die with it), its
readiness is the line `Worker ready` in its log, and its outputs are read back from
o2c.matches and o2c.mismatches. Nothing but the contract's partitioner is taken from the
worker's code, so the helpers hold for any runtime behind that command.

Isolation on a shared broker. The internal topics (o2c.internal.*) are not prefixed by the
application id, so every application on the broker reads what every other one writes
there. Each run therefore starts at the end of every internal topic, and every stream a
test publishes carries identifiers of its own (`tag_stream`): the simulator numbers its
orders from ORD-0000001 whatever its seed, and so does every other simulator run.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from schemas.base import CloudEvent
from schemas.codec import decode
from schemas.topics import ALL_TOPICS, MATCHES, MISMATCHES, Role, topic_for
from services import kafka_io
from services.runtime.partitioning import partition_of
from tests.conftest import Services, service_env

O2C = str(Path(sys.executable).with_name("o2c"))
OUTPUT_TOPICS = (MATCHES.name, MISMATCHES.name)
INPUT_TOPICS = tuple(t.name for t in ALL_TOPICS if t.role is Role.INPUT)
READY = b"Worker ready"
Document = dict[str, Any]


def internal_topics() -> list[str]:
    """The internal topics of the registry, asked at call time (a runtime may add some)."""
    return [t.name for t in ALL_TOPICS if t.role is Role.INTERNAL]


# ---------------------------------------------------------------- streams


_ID_PREFIXES = rb"ORD|PAY|INV|RFD|CB|CN|CUST|BL|E2E|PO|ACC"
_ID = re.compile(rb"(?<![A-Za-z0-9])(" + _ID_PREFIXES + rb")-")


def new_tag() -> str:
    """A short alphanumeric tag, e.g. 'T3f9a2c', that keeps references parseable."""
    return f"T{uuid.uuid4().hex[:6]}"


def tag_stream(lines: Iterable[bytes], tag: str) -> list[CloudEvent]:
    """The simulator's events with every business identifier (orders, payments, invoices,
    customers, accounts, payouts, bank lines, …) made unique to `tag`, and the event ids
    too: ORD-0000123 becomes ORD-T3f9a2c0000123 everywhere it occurs, remittance texts
    included, so the references still name the same things."""
    events = []
    for line in lines:
        document = orjson.loads(_ID.sub(rb"\1-" + tag.encode(), line))
        document["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}:{document['id']}"))
        events.append(decode(orjson.dumps(document)))
    return events


def simulated(orders: int, days: int, seed: int, start: date) -> list[bytes]:
    """The simulator's stream (`o2c simulate`), in delivery order, as encoded lines."""
    import io

    from services.simulator.config import SimConfig
    from services.simulator.run import simulate

    out, truth = io.BytesIO(), io.BytesIO()
    simulate(SimConfig(orders=orders, days=days, seed=seed, start=start), out, truth)
    return out.getvalue().splitlines()


LEDGER_DIRECT_TOPICS = frozenset({"o2c.orders", "o2c.invoices", "o2c.payments", "o2c.refunds"})


def ledger_direct(events: Iterable[CloudEvent]) -> list[CloudEvent]:
    """The events the ledger reads straight from its input topics, keyed by their order:
    orders, invoices, payments that name their order, refunds and chargebacks. Left out:
    what reaches the ledger only through an internal topic written by another processor
    (bank lines, payouts, payments without an order) and the clock. Those arrive while the
    run goes, at moments no runtime fixes, so two correct runs may handle them at
    different points; without them the outputs of a correct runtime are fully determined
    by the log (event-time order within a task) and two runs can be compared byte for
    byte."""
    kept = []
    for e in events:
        if topic_for(e).name not in LEDGER_DIRECT_TOPICS:
            continue
        if topic_for(e).name == "o2c.payments" and not getattr(e.data, "order_id", None):
            continue
        kept.append(e)
    return kept


def cut_by_event_time(events: Sequence[CloudEvent], cuts: int, seed: int) -> list[list[CloudEvent]]:
    """`cuts` + 1 segments split at seeded random event times; each keeps the stream's
    order. Every event of a segment is earlier than every event of the next, so a runtime
    that handles each task's records in event-time order handles the segments one after
    the other whether they are published at once or one by one."""
    import random

    rng = random.Random(seed)
    times = sorted({e.time for e in events})
    if len(times) <= cuts:
        raise ValueError(f"{len(times)} distinct event times cannot be cut {cuts} times")
    boundaries = sorted(rng.sample(times[1:], cuts))
    segments: list[list[CloudEvent]] = [[] for _ in range(cuts + 1)]
    for e in events:
        index = sum(1 for b in boundaries if e.time >= b)
        segments[index].append(e)
    return segments


def publish(services: Services, events: Iterable[CloudEvent]) -> int:
    """Every event to its home topic with the contract's key (murmur2); waits for acks."""
    out = kafka_io.EventProducer(services.kafka_bootstrap)
    for e in events:
        out.send(e)
    return out.flush()


def input_ends(services: Services) -> list[TopicPartition]:
    """The current end of every input topic of the contract."""
    return kafka_io.end_offsets(services.kafka_bootstrap, INPUT_TOPICS)


def output_ends(services: Services) -> list[TopicPartition]:
    return kafka_io.end_offsets(services.kafka_bootstrap, OUTPUT_TOPICS)


def fresh_app(services: Services, prefix: str, inputs_from: list[TopicPartition] | None) -> str:
    """A new application id whose group starts at `inputs_from` on the input topics (None:
    at offset 0, through O2C_AUTO_OFFSET_RESET=earliest) and at the current end of every
    internal topic (see the module docstring)."""
    app_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kafka_io.ensure_topics(services.kafka_bootstrap, ALL_TOPICS)
    offsets = kafka_io.end_offsets(services.kafka_bootstrap, internal_topics())
    if inputs_from is not None:
        offsets = [*inputs_from, *offsets]
    kafka_io.commit_offsets(services.kafka_bootstrap, app_id, offsets)
    return app_id


def input_lag(services: Services, app_id: str) -> int:
    """Messages of the input topics that `app_id` has not committed yet."""
    return kafka_io.lag(services.kafka_bootstrap, app_id, INPUT_TOPICS)


# ---------------------------------------------------------------- workers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Worker:
    """One `o2c worker` command: a process group (its children, if any, included)."""

    process: subprocess.Popen[bytes]
    log: Path
    metrics_port: int
    log_start: int
    name: str

    def log_text(self) -> str:
        return self.log.read_bytes()[self.log_start :].decode(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample on the worker's Prometheus endpoint (0 when absent)."""
        return metric_value(self.metrics_port, name, **labels)


def metric_value(port: int, name: str, **labels: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        present = set(label_text.rstrip("}").split(",")) if label_text else set()
        if wanted <= present:
            total += float(value)
    return total


@dataclass
class Workers:
    """Starts `o2c worker` commands and stops every one still running on `close`."""

    services: Services
    root: Path
    started: list[Worker] = field(default_factory=list)

    def start(
        self,
        app_id: str,
        *,
        name: str = "worker",
        state_dir: Path | None = None,
        processes: int | None = None,
        wait: bool = True,
        ready_timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> Worker:
        """`o2c worker` in `app_id`, its state in `state_dir` (default: under root/name).

        `processes` passes `--processes N` (default 1: one command, one process, whatever
        O2C_WORKER_PROCESSES says). `env` holds extra O2C_* variables.
        """
        workdir = self.root / name
        workdir.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        env = service_env(
            self.services,
            O2C_APP_ID=app_id,
            O2C_STATE_DIR=str(state_dir or workdir / "state"),
            O2C_METRICS_PORT=str(port),
            O2C_AUTO_OFFSET_RESET="earliest",
            O2C_SESSION_TIMEOUT_SECONDS="6",
            **(env or {}),
        )
        command = [O2C, "worker"]
        command += ["--processes", str(1 if processes is None else processes)]
        log = workdir / "worker.log"
        log_start = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        worker = Worker(process, log, port, log_start, name)
        self.started.append(worker)
        if wait:
            self.wait_ready(worker, timeout=ready_timeout)
        return worker

    def wait_ready(self, worker: Worker, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY in worker.log.read_bytes()[worker.log_start :]:
                return
            if not worker.alive():
                raise AssertionError(
                    f"{worker.name} exited with {worker.process.returncode} before it was "
                    f"ready; log:\n{worker.log_text()[-4000:]}"
                )
            time.sleep(0.1)
        raise AssertionError(
            f"{worker.name} not ready after {timeout:.0f}s; log:\n{worker.log_text()[-4000:]}"
        )

    def kill(self, worker: Worker) -> None:
        """SIGKILL to the whole group: a crash, nothing flushed or committed."""
        worker.signal_group(signal.SIGKILL)
        worker.process.wait(timeout=30)

    def stop(self, worker: Worker, timeout: float = 30) -> int:
        """SIGTERM (graceful stop), SIGKILL after `timeout`; returns the exit status."""
        if worker.alive():
            worker.signal_group(signal.SIGTERM)
            try:
                worker.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                worker.signal_group(signal.SIGKILL)
                worker.process.wait(timeout=30)
        # Children of a runtime that outlived their parent.
        worker.signal_group(signal.SIGKILL)
        return worker.process.returncode

    def close(self) -> None:
        for worker in self.started:
            self.stop(worker)

    def assert_running(self, *workers: Worker) -> None:
        for worker in workers:
            assert worker.alive(), (
                f"{worker.name} exited with {worker.process.returncode}; "
                f"log:\n{worker.log_text()[-4000:]}"
            )


def workers(services: Services, root: Path) -> Iterator[Workers]:
    """For a fixture: `yield from workers(services, tmp_path)` stops them all afterwards."""
    pool = Workers(services, root)
    try:
        yield pool
    finally:
        pool.close()


# ---------------------------------------------------------------- outputs


@dataclass
class Output:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    document: Document

    @property
    def id(self) -> str:
        return str(self.document["id"])

    @property
    def type(self) -> str:
        return str(self.document["type"])

    def content(self) -> Document:
        """The document without its `source`, which names the run that wrote it."""
        return {k: v for k, v in self.document.items() if k != "source"}


class OutputReader:
    """Reads o2c.matches and o2c.mismatches from `since`, keeping what `source` wrote about
    `causes` (None: any cause), in arrival order. `read_committed` reads as a
    transactional reader would."""

    def __init__(
        self,
        services: Services,
        since: list[TopicPartition],
        source: str,
        causes: frozenset[str] | None = None,
        *,
        read_committed: bool = False,
    ) -> None:
        config: dict[str, Any] = {
            "bootstrap.servers": services.kafka_bootstrap,
            "group.id": "o2c-tests",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
        if read_committed:
            config["isolation.level"] = "read_committed"
        self._consumer = Consumer(config)
        self._consumer.assign(since)
        self.source = source
        self.causes = causes
        self.records: list[Output] = []
        self.unique: dict[str, Output] = {}
        self.conflicts: list[tuple[Output, Output]] = []

    def poll(self, seconds: float) -> int:
        """Read for `seconds`; returns how many kept records arrived."""
        deadline = time.monotonic() + seconds
        kept = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return kept
            for msg in self._consumer.consume(2000, timeout=min(left, 0.2)):
                if msg.error():
                    continue
                document = orjson.loads(msg.value() or b"{}")
                if document.get("source") != self.source:
                    continue
                if self.causes is not None and document.get("causationid") not in self.causes:
                    continue
                record = Output(
                    str(msg.topic()),
                    int(msg.partition() or 0),
                    int(msg.offset() or 0),
                    msg.key(),
                    document,
                )
                self.records.append(record)
                first = self.unique.setdefault(record.id, record)
                if first.content() != record.content():
                    self.conflicts.append((first, record))
                kept += 1

    def wait_until(
        self,
        done: Callable[[OutputReader], bool],
        timeout: float,
        running: Sequence[Worker] = (),
    ) -> bool:
        """Read until `done(self)`; False after `timeout`. Fails at once, with its log,
        if one of the `running` workers exits."""
        deadline = time.monotonic() + timeout
        while not done(self):
            if time.monotonic() > deadline:
                return False
            for worker in running:
                assert worker.alive(), (
                    f"{worker.name} exited by itself with status {worker.process.returncode}"
                    f"; log:\n{worker.log_text()[-4000:]}"
                )
            self.poll(0.2)
        return True

    def wait_for(
        self,
        done: Callable[[OutputReader], bool],
        timeout: float,
        what: str,
        running: Sequence[Worker] = (),
    ) -> None:
        assert self.wait_until(done, timeout, running), (
            f"timed out after {timeout:.0f}s waiting for {what}; "
            f"{len(self.unique)} distinct outputs ({len(self.records)} records) so far"
        )

    def settle(self, quiet: float, timeout: float, what: str) -> None:
        """Read until nothing new arrived for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        while self.poll(quiet) > 0:
            assert time.monotonic() < deadline, (
                f"outputs of {what} still arriving after {timeout:.0f}s "
                f"({len(self.unique)} distinct so far)"
            )

    def contents(self) -> dict[str, Document]:
        """Distinct outputs by id, without `source`."""
        return {i: o.content() for i, o in self.unique.items()}

    def duplicates(self) -> dict[str, int]:
        from collections import Counter

        counts = Counter(o.id for o in self.records)
        return {i: n for i, n in counts.items() if n > 1}

    def close(self) -> None:
        self._consumer.close()


def wait_until_consumed(
    services: Services, app_id: str, timeout: float, *, running: Sequence[Worker] = ()
) -> None:
    """Until `app_id` has committed every input record; fails early if a worker died."""
    deadline = time.monotonic() + timeout
    behind = input_lag(services, app_id)
    while behind > 0:
        for worker in running:
            assert worker.alive(), (
                f"{worker.name} exited with {worker.process.returncode} with {behind} input "
                f"records left; log:\n{worker.log_text()[-4000:]}"
            )
        assert time.monotonic() < deadline, (
            f"{app_id} still {behind} input records behind after {timeout:.0f}s"
        )
        time.sleep(0.5)
        behind = input_lag(services, app_id)


def describe_difference(expected: dict[str, Document], actual: dict[str, Document]) -> str:
    """A short account of how two sets of outputs differ, for assertion messages."""
    missing = expected.keys() - actual.keys()
    extra = actual.keys() - expected.keys()
    changed = [i for i in expected.keys() & actual.keys() if expected[i] != actual[i]]
    lines = [
        f"expected {len(expected)} outputs, got {len(actual)}: {len(missing)} missing, "
        f"{len(extra)} unexpected, {len(changed)} with other contents"
    ]
    for label, ids, source in (("missing", missing, expected), ("unexpected", extra, actual)):
        for i in sorted(ids)[:3]:
            lines.append(f"  {label}: {_short(source[i])}")
    for i in changed[:3]:
        lines.append(f"  expected: {_short(expected[i])}\n  got:      {_short(actual[i])}")
    return "\n".join(lines)


def _short(document: Document) -> str:
    data = document.get("data") or {}
    fields = {k: data[k] for k in ("order_id", "status", "reason", "open_balance") if k in data}
    cause = document.get("causationid")
    return f"{document.get('type')} id={document.get('id')} cause={cause} {fields}"


def event_ids(events: Iterable[CloudEvent]) -> frozenset[str]:
    return frozenset(e.id for e in events)


def when(day: date, hour: int, minute: int = 0) -> datetime:
    from datetime import UTC
    from datetime import time as clock

    return datetime.combine(day, clock(hour, minute), tzinfo=UTC)


# ---------------------------------------------------------------- runs


@dataclass(frozen=True)
class Stream:
    """A test's input events, cut at event times into segments (see cut_by_event_time)."""

    segments: list[list[CloudEvent]]

    @property
    def events(self) -> list[CloudEvent]:
        return [e for segment in self.segments for e in segment]

    @property
    def ids(self) -> frozenset[str]:
        return event_ids(self.events)

    def segment_of(self) -> dict[str, int]:
        return {e.id: k for k, segment in enumerate(self.segments) for e in segment}


def ledger_stream(orders: int, days: int, seed: int, start: date, cuts: int) -> Stream:
    """The simulator's stream of `orders` orders, tagged, what the ledger reads directly
    (`ledger_direct`), cut into `cuts` + 1 segments."""
    events = ledger_direct(tag_stream(simulated(orders, days, seed, start), new_tag()))
    return Stream(cut_by_event_time(events, cuts, seed))


def reference_run(
    services: Services,
    pool: Workers,
    stream: Stream,
    source: str,
    env: dict[str, str] | None = None,
) -> dict[str, Document]:
    """One worker, never interrupted, on the whole stream published at once: its distinct
    outputs about the stream, by id."""
    app_id = fresh_app(services, source, input_ends(services))
    since = output_ends(services)
    publish(services, stream.events)
    reader = OutputReader(services, since, source, stream.ids)
    try:
        worker = pool.start(app_id, name=source, env={"O2C_SOURCE": source, **(env or {})})
        wait_until_consumed(services, app_id, 300, running=[worker])
        reader.settle(quiet=5, timeout=120, what=source)
        pool.stop(worker)
        assert not reader.conflicts, f"one id, two contents: {reader.conflicts[0]}"
        return reader.contents()
    finally:
        reader.close()


@dataclass
class KilledRun:
    outputs: dict[str, Document]
    records: list[Output]
    conflicts: list[tuple[Output, Output]]
    kills: int
    mid_segment_kills: int
    seconds: float


def killed_run(
    services: Services,
    pool: Workers,
    stream: Stream,
    reference: dict[str, Document],
    source: str,
    *,
    seed: int,
    keep_state: bool,
    read_committed: bool = False,
    final_timeout: float = 240,
    env: dict[str, str] | None = None,
) -> KilledRun:
    """The stream published one segment at a time while the worker is down; after each
    segment but the last the worker is started, killed with SIGKILL once it has written a
    seeded random share of that segment's outputs (possibly all), and started again, on a
    new state directory (`keep_state=False`) or the same one."""
    import random

    rng = random.Random(seed)
    started = time.monotonic()
    segment_of = stream.segment_of()
    expected_per_segment = [0] * len(stream.segments)
    for document in reference.values():
        expected_per_segment[segment_of[str(document["causationid"])]] += 1
    app_id = fresh_app(services, source, input_ends(services))
    since = output_ends(services)
    reader = OutputReader(services, since, source, stream.ids, read_committed=read_committed)
    kills = mid = 0

    def written(k: int) -> int:
        return sum(
            1 for o in reader.unique.values() if segment_of[str(o.document["causationid"])] == k
        )

    try:
        last = len(stream.segments) - 1
        for k, segment in enumerate(stream.segments):
            publish(services, segment)
            state = pool.root / source / ("state" if keep_state else f"state-{k}")
            worker = pool.start(
                app_id, name=source, state_dir=state, env={"O2C_SOURCE": source, **(env or {})}
            )
            if k == last:
                break
            target = rng.randint(1, max(1, expected_per_segment[k]))
            reader.wait_for(
                lambda _r, k=k, target=target: written(k) >= target,  # type: ignore[misc]
                timeout=120,
                what=f"{target} outputs of segment {k} before kill {kills + 1} (the "
                f"uninterrupted run wrote {expected_per_segment[k]} for this segment)",
                running=[worker],
            )
            pool.kill(worker)
            kills += 1
            reader.poll(0.3)
            mid += written(k) < expected_per_segment[k]
        # On a timeout the caller's comparison says what is missing.
        reader.wait_until(lambda r: reference.keys() <= r.unique.keys(), final_timeout, [worker])
        reader.settle(quiet=3, timeout=60, what=source)
        pool.assert_running(worker)
        pool.stop(worker)
        return KilledRun(
            reader.contents(),
            list(reader.records),
            list(reader.conflicts),
            kills,
            mid,
            time.monotonic() - started,
        )
    finally:
        reader.close()


# ---------------------------------------------------------------- partitioning


def contract_partition(key: str, partitions: int = 12) -> int:
    """The contract's partition of `key`: murmur2 as the Java client places it (pinned by
    the Java client's own vectors in tests/unit/test_partitioning.py)."""
    return partition_of(key.encode(), partitions)


# ---------------------------------------------------------------- live streams


def orders_stream(orders: int, days: int, seed: int, start: date) -> list[CloudEvent]:
    """The order facts (placed, amended, cancelled) of the simulator's stream, tagged. They
    share one topic and one key per order, so each order's outputs follow from the offset
    order of its partition alone, however the stream is published: two correct runs fed it
    while they run give the same outputs, whatever the timing."""
    events = tag_stream(simulated(orders, days, seed, start), new_tag())
    return [e for e in events if topic_for(e).name == "o2c.orders"]


def publish_live(
    services: Services,
    events: Sequence[CloudEvent],
    chunks: int,
    pause: float,
    between: Callable[[int], None] = lambda _k: None,
) -> None:
    """Publish `events` in `chunks` parts, `pause` seconds apart; `between(k)` runs after
    part k is acknowledged."""
    size = -(-len(events) // chunks)
    for k in range(chunks):
        publish(services, events[k * size : (k + 1) * size])
        between(k)
        time.sleep(pause)


def sequences(records: Iterable[Output]) -> dict[tuple[str, bytes | None], list[str]]:
    """Output ids per (topic, key), in offset order, each id at its first appearance."""
    ordered = sorted(records, key=lambda o: (o.topic, o.partition, o.offset))
    result: dict[tuple[str, bytes | None], list[str]] = {}
    seen: set[str] = set()
    for o in ordered:
        if o.id in seen:
            continue
        seen.add(o.id)
        result.setdefault((o.topic, o.key), []).append(o.id)
    return result


_HELPERS = (b"resource_tracker", b"forkserver", b"semaphore_tracker")


def worker_processes(pid: int) -> list[int]:
    """The processes below `pid` that can be workers: its descendants but multiprocessing's
    helper processes (resource tracker, fork server)."""
    found = []
    for child in descendants(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if not any(helper in command for helper in _HELPERS):
            found.append(child)
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, …), from /proc."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.append(child)
                    todo.append(child)
    return found


# ---------------------------------------------------------------- the local broker

REPO = Path(__file__).resolve().parent.parent


def stack_dir() -> Path:
    """Where deploy/local/stack keeps its services: $O2C_STACK_DIR, else <repo>/.local-stack."""
    return Path(os.environ.get("O2C_STACK_DIR") or REPO / ".local-stack")


def local_stack_pid(relative_pidfile: str, marker: bytes, what: str) -> int:
    """The pid a server of the local stack recorded in its pid file (under the stack's
    folder), checked against the process's command line as the stack itself does: it must
    name `marker` and the stack's folder, so no other checkout's server is touched."""
    pidfile = stack_dir() / relative_pidfile
    assert pidfile.exists(), f"no {pidfile}: is this {what} the local stack's? (O2C_STACK_DIR)"
    pid = int(pidfile.read_text().split()[0])
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        raise AssertionError(f"{pidfile} names pid {pid}, which is not running") from None
    ours = marker in command and str(stack_dir()).encode() in command
    assert ours, f"pid {pid} from {pidfile} is not this stack's {what}: {command[-300:]!r}"
    return pid


def local_kafka_pid() -> int:
    """The pid of the local stack's Kafka."""
    return local_stack_pid("kafka/kafka.pid", b"kafka.Kafka", "Kafka")


def stop_local_kafka(timeout: float = 60) -> None:
    """Stop the local stack's Kafka alone (SIGTERM, as `stack down` does; SIGKILL after
    `timeout`). PostgreSQL keeps running."""
    pid = local_kafka_pid()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline += 30
        time.sleep(0.2)


def start_local_kafka() -> None:
    """`deploy/local/stack up`: starts what is stopped (here Kafka) and waits until ready."""
    env = dict(os.environ, O2C_STACK_DIR=str(stack_dir()))
    subprocess.run(
        [str(REPO / "deploy/local/stack"), "up"],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
        timeout=300,
    )
