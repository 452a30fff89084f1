"""Support for the fault suite (tests/faults, issue #21): the figures each fault records,
their JSON summary under bench/results/, and the ways this run's own stack is broken.

Every fault is measured the same way. A stream is published in two halves; the fault hits
while the first half is being processed, and once it is over (the process started again,
the server back) the run waits until everything published so far is consumed: the
seconds from the end of the fault to that point are its recovery time. The second half is
then published and the outputs compared with those of a run without a fault: `lost` are
the outputs that run wrote and this one did not, `duplicated` the outputs or rows this one
has beyond it (or with other contents). Kafka records written twice under at-least-once
(same id, same contents) are `redelivered`: a reader keeps the first of each id, as the
projection does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.runtime_support import REPO, local_kafka_pid, local_stack_pid, stack_dir

RESULTS = REPO / "bench" / "results"


@dataclass
class Figures:
    """What one fault did to one run."""

    scenario: str
    fault: str
    events_in: int
    outputs_expected: int
    outputs_accounted: int
    lost: int
    duplicated: int
    redelivered: int
    outputs_before_fault: int
    fault_seconds: float
    recovery_seconds: float
    manual_steps: int = 0
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.manual_steps == 0


_recorded: list[Figures] = []
_soak: dict[str, object] = {}


def record(figures: Figures) -> None:
    """Keep `figures` for the summary (before the test asserts, so a failure shows too)."""
    _recorded.append(figures)


def recorded() -> list[Figures]:
    return list(_recorded)


def record_soak(figures: dict[str, object]) -> None:
    _soak.clear()
    _soak.update(figures)


def recorded_soak() -> dict[str, object]:
    return dict(_soak)


def write_summary(
    figures: list[Figures], soak: dict[str, object] | None = None, when: datetime | None = None
) -> Path:
    """bench/results/faults-<date>.json: this run's scenarios, replacing those of the same
    name an earlier run of the day wrote."""
    when = when or datetime.now(UTC)
    path = RESULTS / f"faults-{when.date().isoformat()}.json"
    previous: list[dict[str, object]] = []
    earlier: dict[str, Any] = {}
    if path.exists():
        earlier = json.loads(path.read_text())
        previous = list(earlier.get("scenarios", []))
    names = {f.scenario for f in figures}
    scenarios = [s for s in previous if s.get("scenario") not in names]
    scenarios += [{**asdict(f), "clean": f.clean} for f in figures]
    document = {
        "written_at": when.isoformat(timespec="seconds"),
        "commit": _commit(),
        "all_clean": all(bool(s.get("clean")) for s in scenarios),
        "scenarios": scenarios,
        "soak": soak or earlier.get("soak"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "-"
    return out.stdout.strip() or "-"


def table(figures: list[Figures]) -> str:
    head = ("scenario", "events in", "expected", "accounted", "lost", "dup", "redeliv", "recov s")
    rows = [
        (
            f.scenario,
            str(f.events_in),
            str(f.outputs_expected),
            str(f.outputs_accounted),
            str(f.lost),
            str(f.duplicated),
            str(f.redelivered),
            f"{f.recovery_seconds:.1f}",
        )
        for f in figures
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    return "\n".join(lines)


# ---------------------------------------------------------------- breaking our own stack


def may_break_the_stack(origin: str) -> str | None:
    """None when this run may kill the broker and the database (the tests started the
    local stack themselves, or O2C_TEST_FAULTS=1 / O2C_TEST_BROKER_OUTAGE=1 say the stack
    at $O2C_STACK_DIR is this run's own); else why not."""
    if origin == "deploy/local":
        return None
    if "1" in (os.environ.get("O2C_TEST_FAULTS"), os.environ.get("O2C_TEST_BROKER_OUTAGE")):
        return None
    return (
        f"kills the broker and the database, which would break other users of these "
        f"({origin}): runs when the tests start the local stack themselves, or with "
        "O2C_TEST_FAULTS=1 for a deploy/local stack of this run's own"
    )


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            return
        if state == "Z":
            return  # a zombie: dead, waiting for its parent (init) to reap it
        assert time.monotonic() < deadline, f"pid {pid} still running {timeout:.0f}s after SIGKILL"
        time.sleep(0.1)


def kill_local_kafka() -> None:
    """SIGKILL to the local stack's broker: nothing flushed, no controlled shutdown."""
    pid = local_kafka_pid()
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, 60)


def local_postgres_pid() -> int:
    """The postmaster of the local stack's PostgreSQL, from its postmaster.pid."""
    return local_stack_pid("postgres/data/postmaster.pid", b"postgres", "PostgreSQL")


def kill_local_postgres() -> None:
    """SIGKILL to the postmaster; its backends notice and exit. The server restarts with
    crash recovery (`deploy/local/stack up`)."""
    pid = local_postgres_pid()
    backends = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _parent(int(p.name)) == pid
    ]
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, 60)
    for backend in backends:
        _wait_gone(backend, 60)


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def start_local_stack() -> None:
    """`deploy/local/stack up`: starts what is stopped and waits until it answers, with the
    settings the stack was started with (its proxied listener, when it has one)."""
    _stack_up({})


def _stack_up(settings: dict[str, str]) -> None:
    # A broker killed with SIGKILL recovers every log segment it had not flushed: on a
    # busy machine that can take longer than the stack's default 120 s. The environment's
    # O2C_KAFKA_PROXIED_* are how the stack was started: a `stack up` without them would
    # write the broker's config without that listener.
    env = dict(os.environ, O2C_STACK_DIR=str(stack_dir()), O2C_STACK_TIMEOUT="300")
    env.update(settings)
    for name in [k for k, v in env.items() if k.startswith("O2C_KAFKA_PROXIED_") and not v]:
        del env[name]
    done = subprocess.run(
        [str(REPO / "deploy/local/stack"), "up"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=360,
    )
    assert done.returncode == 0, f"deploy/local/stack up failed:\n{done.stderr[-4000:]}"


def proxied_listener() -> tuple[int, int] | None:
    """(the port of the broker's proxied listener, the port it advertises) when the stack
    was started with one (`make test-faults` does: tests/faults/own-stack), else None."""
    listener = os.environ.get("O2C_KAFKA_PROXIED_PORT")
    advertised = os.environ.get("O2C_KAFKA_PROXIED_ADVERTISED_PORT")
    if not listener or not advertised:
        return None
    return int(listener), int(advertised)


def restart_local_kafka(**settings: str) -> None:
    """The local stack's broker stopped (SIGTERM) and started again with `settings` (extra
    O2C_* variables of deploy/local/stack, e.g. its proxied listener; "" unsets one) or
    with those it was started with. A broker that is not running is only started."""
    from tests.runtime_support import stop_local_kafka

    if (stack_dir() / "kafka" / "kafka.pid").exists():
        with contextlib.suppress(AssertionError):  # the pid file names no running broker
            stop_local_kafka()
    _stack_up(settings)


# ---------------------------------------------------------------- the read side


def start_projections_at_end(bootstrap: str, conninfo: str, schema: str) -> None:
    """Both projections `o2c projections run` runs in `schema` (the read models and,
    beside them, the timeline) start where their topics end now: they see only what the
    test publishes, not the topics' history."""
    from projections.runner import ProjectionRunner, end_positions, unique_group
    from projections.timeline import TimelineRunner

    for kind in (ProjectionRunner, TimelineRunner):
        runner = kind(bootstrap, conninfo, schema, group_id=unique_group("flt-start"))
        try:
            runner.store.save_offsets(end_positions(bootstrap, kind.topics))
        finally:
            runner.close()


def catch_up_projections(bootstrap: str, conninfo: str, schema: str) -> None:
    """Both projections of `schema` run in this process until they have read everything
    published so far: what a projection without a fault writes."""
    from projections.runner import ProjectionRunner, end_positions, unique_group
    from projections.timeline import TimelineRunner

    for kind in (ProjectionRunner, TimelineRunner):
        runner = kind(bootstrap, conninfo, schema, group_id=unique_group("flt-reference"))
        try:
            runner.run(until_offsets=end_positions(bootstrap, kind.topics), max_seconds=180)
        finally:
            runner.close()


# ---------------------------------------------------------------- a slow, flaky network


class FlakyProxy:
    """A TCP proxy on 127.0.0.1:`port` to 127.0.0.1:`target`: every chunk waits `delay`
    seconds before it is passed on, in both directions, and while `dropping` is set every
    connection is cut each `drop_every` seconds (both ends closed, as a network that
    fails does). Threads; `close` stops everything it started."""

    def __init__(self, port: int, target: int, delay: float, drop_every: float) -> None:
        self.port, self.target, self.delay, self.drop_every = port, target, delay, drop_every
        self.dropping = threading.Event()
        self.closed = threading.Event()
        self.drops = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self._listener.settimeout(0.2)
        self._threads = [
            threading.Thread(target=self._accept, daemon=True),
            threading.Thread(target=self._cut, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            source.settimeout(None)  # fails if a cut closed it already
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                time.sleep(self.delay)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                _shut(s)

    def _cut(self) -> None:
        while not self.closed.wait(self.drop_every):
            if not self.dropping.is_set():
                continue
            with self._lock:
                cut, self._open = self._open, []
            if cut:
                self.drops += 1
            for s in cut:
                _shut(s)

    def close(self) -> None:
        self.closed.set()
        self._listener.close()
        with self._lock:
            cut, self._open = self._open, []
        for s in cut:
            _shut(s)
        for thread in self._threads:
            thread.join(timeout=10)


def _shut(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()
