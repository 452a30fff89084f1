"""The scale run: a simulated stream through the whole pipeline, with its duration and memory.

    python -m bench.scale --stream s.jsonl [--truth s.truth.jsonl] [--timeout 7200]
                          [--workdir DIR]   # resumable: run the same command again to go on

Run it against a broker and a database of its own (a second local stack, for instance
`O2C_STACK_DIR=/tmp/scale-stack O2C_KAFKA_PORT=19092 O2C_KAFKA_CONTROLLER_PORT=19093
O2C_PG_PORT=15432 deploy/local/stack up`): it refuses topics that already hold orders.

One `o2c worker` and one `o2c projections run` are started; the stream is published as
upstream systems and the clock would publish it: each day's facts, then — once the worker
has consumed them — that day's `day.closed`. (Published all at once, a backlog lets the
clock overtake the facts of other topics and time-driven rules fire on facts not yet read;
in production the clock is published after the day.) The run ends when the worker has no
lag and the projection has reached the end of every topic it reads. Reported: duration,
peak resident memory of both processes, size of the worker's RocksDB state, outputs, and
the open exceptions in PostgreSQL scored against the ground truth.

With `--workdir`, the run can be stopped and resumed: after each day it records there how
far it got (`progress.json`), and started again with the same directory it restarts the
worker on the same application id and state, skips the days already done and goes on. A
day interrupted halfway is published again from its start (the cores ignore a fact they
already have). The reported duration is the sum of the segments' worker time up to their
last finished day (the time of an interrupted day is counted once, when it is done again).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer, TopicPartition

from bench.pipeline import INPUTS
from bench.processes import Process
from bench.procfs import disk_bytes
from projections.runner import end_positions
from schemas.codec import decode
from schemas.events import ReasonCode
from schemas.topics import ALL_TOPICS, CLOCK, MATCHES, MISMATCHES, ORDERS, topic_for
from services.cli.output import table
from services.cli.simulate import truth_path
from services.kafka_io import EventProducer, consumer, end_offsets, ensure_topics, watermarks
from services.settings import Settings, get_settings
from services.simulator.truth import KEY_FIELDS, mismatch_key, read_truth

RESULTS = Path(__file__).parent / "results"


def days(path: Path) -> Iterator[tuple[list[bytes], bytes | None]]:
    """The stream cut at each day.closed: (the lines before it, the day.closed line)."""
    chunk: list[bytes] = []
    with path.open("rb") as handle:
        for line in handle:
            raw = line.rstrip(b"\r\n")
            if not raw:
                continue
            if b'"o2c.day.closed.v1"' in raw:
                yield chunk, raw
                chunk = []
            else:
                chunk.append(raw)
    yield chunk, None


@dataclass
class Progress:
    """How far a run got, kept in its work directory after every day."""

    app_id: str
    stream: str
    days_done: int = 0
    published: int = 0
    seconds: float = 0.0  # worker time of the segments so far
    segments: int = 0
    worker_peak_kib: int = 0
    projections_peak_kib: int = 0
    state_peak: int = 0
    worker_restarts: int = 0  # exits to read a batch again, over all segments

    @staticmethod
    def path(workdir: Path) -> Path:
        return workdir / "progress.json"

    @classmethod
    def load(cls, workdir: Path) -> Progress | None:
        path = cls.path(workdir)
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def save(self, workdir: Path) -> None:
        temporary = self.path(workdir).with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2))
        temporary.replace(self.path(workdir))  # never half a file if the run is stopped


class ScaleRun:
    def __init__(
        self, settings: Settings, workdir: Path, timeout: float, progress: Progress
    ) -> None:
        self.settings = settings
        self.bootstrap = settings.kafka_bootstrap
        self.workdir = workdir
        self.deadline = time.monotonic() + timeout
        self.before = progress  # the earlier segments, if any
        self.segment = progress.segments + 1
        self.days_done = progress.days_done
        self.app_id = progress.app_id
        self.state_dir = workdir / "state"
        env = dict(
            os.environ,
            O2C_APP_ID=self.app_id,
            O2C_STATE_DIR=str(self.state_dir),
            O2C_METRICS_PORT="0",
            O2C_LOG_LEVEL="warning",
        )
        o2c = [sys.executable, "-m", "services.cli.main"]
        subprocess.run([*o2c, "db", "migrate"], env=env, check=True, capture_output=True)
        self.started = time.monotonic()
        self.worker = Process(
            "worker",
            [*o2c, "worker"],
            env,
            workdir / f"worker.{self.segment}.log",
        )
        self.projections = Process(
            "projections",
            [*o2c, "projections", "run"],
            env,
            workdir / f"projections.{self.segment}.log",
        )
        self.published = progress.published
        self.state_peak = progress.state_peak
        self._probe: Consumer | None = None
        self._partitions: list[TopicPartition] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(5):
            self.worker.sample()
            self.projections.sample()
            self.state_peak = max(self.state_peak, disk_bytes(self.state_dir))

    def _check(self) -> None:
        self.worker.check()
        self.projections.check()
        if time.monotonic() > self.deadline:
            raise RuntimeError("scale run timed out; the processes are stopped")

    def worker_lag(self) -> int:
        """Uncommitted messages of the worker's group, with one long-lived consumer: a new
        client per probe, asking ~200 partitions each time, loads the shared broker."""
        if self._probe is None:
            self._probe = consumer(self.bootstrap, self.app_id)
            metadata = self._probe.list_topics(timeout=30)
            self._partitions = [
                TopicPartition(name, p)
                for name in INPUTS
                if name in metadata.topics
                for p in metadata.topics[name].partitions
            ]
        behind = 0
        for tp in self._probe.committed(self._partitions, timeout=30):
            low, high = watermarks(self._probe, tp)
            behind += max(0, high - (tp.offset if tp.offset >= 0 else low))
        return behind

    def wait_worker(self) -> None:
        # Twice in a row: outputs to internal topics may still be in flight after lag 0.
        quiet = 0
        while quiet < 2:
            self._check()
            quiet = quiet + 1 if self.worker_lag() == 0 else 0
            time.sleep(1)

    def projection_behind(self) -> int:
        ends = end_positions(self.bootstrap)
        schema = self.settings.read_schema
        with psycopg.connect(self.settings.database_url) as conn:
            rows = conn.execute(
                f'SELECT topic, partition, next_offset FROM "{schema}".projection_offsets'
            ).fetchall()
        at = {(t, p): o for t, p, o in rows}
        return sum(max(0, end - at.get(position, 0)) for position, end in ends.items())

    def worker_seconds(self) -> float:
        """Worker time of the whole run: earlier segments and this one so far."""
        return self.before.seconds + time.monotonic() - self.started

    def so_far(self) -> Progress:
        return replace(
            self.before,
            days_done=self.days_done,
            published=self.published,
            seconds=self.worker_seconds(),
            segments=self.segment,
            worker_peak_kib=max(self.before.worker_peak_kib, self.worker.peak_kib),
            projections_peak_kib=max(self.before.projections_peak_kib, self.projections.peak_kib),
            state_peak=self.state_peak,
            worker_restarts=self.before.worker_restarts + self.worker.restarts,
        )

    def publish(self, path: Path) -> None:
        out = EventProducer(self.bootstrap)
        last_report = time.monotonic()
        for day, (lines, closed) in enumerate(days(path), start=1):
            if day <= self.before.days_done:
                continue
            for raw in lines:
                event = decode(raw)
                out.send_raw(topic_for(event).name, event.partition_key(), raw, event.type)
            self.published += len(lines)
            out.flush(600)
            self.wait_worker()
            if closed is not None:
                out.send_raw(CLOCK.name, None, closed)
                out.flush(60)
                self.published += 1
                self.wait_worker()
            self.days_done = day
            self.so_far().save(self.workdir)
            if time.monotonic() - last_report > 20 or closed is None:
                last_report = time.monotonic()
                self.progress(f"day {day}")

    def progress(self, stage: str) -> None:
        print(
            f"[scale] {stage}: {self.published:,} published in {self.worker_seconds():,.0f} s, "
            f"worker rss {self.worker.sample() // 1024} MiB, "
            f"projections rss {self.projections.sample() // 1024} MiB, "
            f"state {disk_bytes(self.state_dir) // 2**20} MiB",
            file=sys.stderr,
            flush=True,
        )

    def wait_projections(self) -> None:
        last = time.monotonic()
        while (behind := self.projection_behind()) > 0:
            self._check()
            if time.monotonic() - last > 20:
                last = time.monotonic()
                self.progress(f"projections {behind:,} behind")
            time.sleep(1)

    def stop(self) -> None:
        self._stop.set()
        if self._probe is not None:
            self._probe.close()
        self.worker.stop()
        self.projections.stop()


def _output_counts(bootstrap: str) -> dict[str, int]:
    return {
        topic: sum(tp.offset for tp in end_offsets(bootstrap, [topic]))
        for topic in (ORDERS.name, MATCHES.name, MISMATCHES.name)
    }


def score_exceptions(settings: Settings, truth_file: Path) -> list[dict[str, Any]]:
    """Open exceptions in PostgreSQL against the truth's expected mismatches, by reason."""
    truth = read_truth(truth_file)
    fields = sorted({f for names in KEY_FIELDS.values() for f in names})
    schema = settings.read_schema
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            f'SELECT reason, {", ".join(fields)} FROM "{schema}".exceptions '
            "WHERE status <> 'resolved'"
        ).fetchall()
    found = {mismatch_key(row[0], dict(zip(fields, row[1:], strict=True))) for row in rows}
    results = []
    for reason in ReasonCode:
        expected = {k for k in truth.expected if k[0] is reason}
        got = {k for k in found if k[0] is reason}
        hit = len(expected & got)
        results.append(
            {
                "reason": reason.value,
                "expected": len(expected),
                "found": len(got),
                "correct": hit,
                "precision": round(hit / len(got), 4) if got else None,
                "recall": round(hit / len(expected), 4) if expected else None,
            }
        )
    return results


def _start(stream: Path, workdir: Path | None, bootstrap: str) -> tuple[Path, Progress]:
    """The work directory and the progress to go on from: a new run, or a stopped one."""
    if workdir is not None and (progress := Progress.load(workdir)) is not None:
        if progress.stream != str(stream):
            raise SystemExit(f"{workdir} holds a run of {progress.stream}, not of {stream}")
        print(
            f"[scale] resuming {progress.app_id} after day {progress.days_done} "
            f"({progress.published:,} published in {progress.seconds:,.0f} s)",
            file=sys.stderr,
        )
        return workdir, progress
    if _output_counts(bootstrap)[ORDERS.name]:
        raise SystemExit(
            f"o2c.orders on {bootstrap} already holds orders: the scale run needs an empty "
            "broker and database, or the --workdir of the run to resume (see --help)"
        )
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="o2c-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir, Progress(app_id=f"o2c-scale-{os.getpid()}", stream=str(stream))


def run(
    stream: Path,
    truth_file: Path | None,
    timeout: float,
    keep: bool,
    workdir: Path | None = None,
) -> dict[str, Any]:
    settings = get_settings()
    ensure_topics(settings.kafka_bootstrap, ALL_TOPICS)
    keep = keep or workdir is not None  # a directory the user named is theirs
    workdir, progress = _start(stream, workdir, settings.kafka_bootstrap)
    scale = ScaleRun(settings, workdir, timeout, progress)
    try:
        scale.publish(stream)
        worker_done = scale.worker_seconds()
        scale.wait_projections()
        done = scale.worker_seconds()
        scale.progress("done")
    finally:
        state_bytes = max(scale.state_peak, disk_bytes(scale.state_dir))
        scale.stop()
        final = scale.so_far()
    counts = _output_counts(settings.kafka_bootstrap)
    result: dict[str, Any] = {
        "stream": str(stream),
        "events_published": scale.published,
        "segments": scale.segment,
        "seconds_to_worker_done": round(worker_done, 1),
        "seconds_to_projected": round(done, 1),
        "events_per_second": round(scale.published / worker_done),
        "worker_peak_rss_mib": final.worker_peak_kib // 1024,
        "projections_peak_rss_mib": final.projections_peak_kib // 1024,
        "worker_state_mib": state_bytes // 2**20,
        "worker_restarts": final.worker_restarts,
        "topic_messages": counts,
        "workdir": str(workdir),
    }
    truth_file = truth_file or Path(truth_path(str(stream)))
    if truth_file.exists():
        result["exceptions_vs_truth"] = score_exceptions(settings, truth_file)
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def report(result: dict[str, Any]) -> str:
    rows = [
        ("events published (facts + clock)", f"{result['events_published']:,}"),
        ("segments (runs resumed)", f"{result.get('segments', 1)}"),
        ("worker caught up after", f"{result['seconds_to_worker_done']:,} s"),
        ("read models caught up after", f"{result['seconds_to_projected']:,} s"),
        ("whole-pipeline rate", f"{result['events_per_second']:,} events/s"),
        ("worker peak resident memory", f"{result['worker_peak_rss_mib']:,} MiB"),
        ("projections peak resident memory", f"{result['projections_peak_rss_mib']:,} MiB"),
        ("worker RocksDB state", f"{result['worker_state_mib']:,} MiB"),
        ("worker restarts to read a batch again", f"{result.get('worker_restarts', 0)}"),
    ]
    rows += [(f"messages on {t}", f"{n:,}") for t, n in result["topic_messages"].items()]
    text = table(("scale run", "value"), rows)
    scores = result.get("exceptions_vs_truth")
    if scores:
        text += "\n\n" + table(
            ("reason", "expected", "open", "correct", "precision", "recall"),
            [
                (s["reason"], s["expected"], s["found"], s["correct"], s["precision"], s["recall"])
                for s in scores
            ],
        )
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stream", type=Path, required=True, help="from `o2c simulate`")
    parser.add_argument("--truth", type=Path, help="default: the stream's .truth.jsonl")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds (4 h)")
    parser.add_argument("--keep", action="store_true", help="keep the worker's state and logs")
    parser.add_argument(
        "--workdir", type=Path, help="state, logs and progress; the same one again resumes"
    )
    args = parser.parse_args(argv)
    # Stopped by a signal, the run still stops its worker and projections (a `finally`),
    # so that it can be resumed; a background shell would otherwise ignore SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped; resume with --workdir"))
    result = run(args.stream, args.truth, args.timeout, args.keep, args.workdir)
    print(report(result))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    path = RESULTS / f"scale-{stamp}.json"
    path.write_text(json.dumps({"at": stamp, "machine": machine, "results": result}, indent=2))
    print(f"written {path}")


if __name__ == "__main__":
    main()
