"""`o2c worker`: every processor on the runtime, in one process or in N of one group."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from services import metrics
from services.runtime.engine import Runtime
from services.settings import Settings
from services.worker.processors import worker_specs

log = logging.getLogger(__name__)

# The first pause before a stopped worker process is started again; it doubles while the
# process keeps stopping within a minute of its start.
RESTART_PAUSE_SECONDS = 1.0


def run_worker(settings: Settings, metrics_port: int | None = None, processes: int = 1) -> int:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stdout,
    )
    count = processes or os.cpu_count() or 1
    if count > 1:
        return _run_processes(settings, count, metrics_port)
    metrics.serve(
        settings.metrics_port if metrics_port is None else metrics_port, settings.metrics_host
    )
    return Runtime(settings, worker_specs(settings)).run()


def _run_processes(settings: Settings, count: int, metrics_port: int | None) -> int:
    """N worker processes in one consumer group, each with its own metrics port (the base
    port + its number) and instance id. A process that stops is started again, after a
    pause that grows while it keeps stopping (a core that fails on every try), as a
    deployment's restart policy would; SIGTERM or SIGINT stops them all."""
    base = settings.metrics_port if metrics_port is None else metrics_port
    children = [_spawn(settings, number, base) for number in range(count)]
    started = [time.monotonic()] * count
    pauses = [RESTART_PAUSE_SECONDS] * count
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    log.info("started %d worker processes in group %s", count, settings.app_id)
    while not stopping:
        for number, child in enumerate(children):
            code = child.poll()
            if code is None or stopping:
                continue
            ran = time.monotonic() - started[number]
            if ran > 60:
                pauses[number] = RESTART_PAUSE_SECONDS
            log.error(
                "worker process %d stopped with status %d after %.0fs; starting it again in %.0fs",
                number,
                code,
                ran,
                pauses[number],
            )
            time.sleep(pauses[number])
            pauses[number] = min(pauses[number] * 2, 60.0)
            if not stopping:
                children[number] = _spawn(settings, number, base)
                started[number] = time.monotonic()
        time.sleep(0.2)
    for child in children:
        child.wait()
    return 0


def _spawn(settings: Settings, number: int, base_port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["O2C_INSTANCE_ID"] = f"{settings.instance_id}-{number}"
    port = base_port + number if base_port else 0
    command = [sys.executable, "-m", "services.cli.main", "worker", "--processes", "1"]
    return subprocess.Popen([*command, "--metrics-port", str(port)], env=env)
