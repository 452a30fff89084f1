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


def run_worker(settings: Settings, metrics_port: int | None = None, processes: int = 1) -> int:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stdout,
    )
    count = processes or os.cpu_count() or 1
    if count > 1:
        return _run_processes(settings, count, metrics_port)
    metrics.serve(settings.metrics_port if metrics_port is None else metrics_port)
    return Runtime(settings, worker_specs(settings)).run()


def _run_processes(settings: Settings, count: int, metrics_port: int | None) -> int:
    """N worker processes in one consumer group, each with its own metrics port (the
    base port + its number) and instance id. A process that stops stops the others: the
    supervisor (compose, k8s, systemd) then restarts the worker as a whole."""
    base = settings.metrics_port if metrics_port is None else metrics_port
    children = []
    for number in range(count):
        env = dict(os.environ)
        env["O2C_INSTANCE_ID"] = f"{settings.instance_id}-{number}"
        port = base + number if base else 0
        command = [sys.executable, "-m", "services.cli.main", "worker", "--processes", "1"]
        command += ["--metrics-port", str(port)]
        children.append(subprocess.Popen(command, env=env))

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    log.info("started %d worker processes in group %s", count, settings.app_id)
    status = 0
    while any(child.poll() is None for child in children):
        for child in children:
            code = child.poll()
            if code is not None and code != 0 and status == 0:
                status = code
                log.error(
                    "worker process %d stopped with status %d; stopping the others", child.pid, code
                )
                forward(signal.SIGTERM, None)
        time.sleep(0.2)
    return status or max((c.returncode or 0) for c in children)
