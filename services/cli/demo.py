"""`o2c demo`: the whole pipeline on the bundled sample, ending in a reconciliation summary."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

from confluent_kafka import KafkaException

from schemas.topics import ALL_TOPICS, Role
from services.cli.output import info
from services.kafka_io import ensure_topics, lag
from services.settings import Settings

SAMPLE = files("services.samples").joinpath("demo.jsonl")


def run_demo(settings: Settings, timeout: float = 180.0) -> int:
    from services.cli.main import main as o2c

    ensure_topics(settings.kafka_bootstrap, ALL_TOPICS)
    log_path = settings.state_dir / "demo-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    info(f"starting the worker (application id {settings.app_id}; log: {log_path})…")
    command = [sys.executable, "-m", "services.cli.main", "worker"]
    with log_path.open("ab") as log:
        worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    try:
        sample = Path(str(SAMPLE))
        if o2c(["publish", str(sample)]) != 0:
            return 1
        _wait_until_processed(settings, worker, timeout)
        return o2c(["summary", "--orders-from", str(sample), "--until-idle", "2"])
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def _wait_until_processed(
    settings: Settings, worker: subprocess.Popen[bytes], timeout: float
) -> None:
    inputs = [t.name for t in ALL_TOPICS if t.role is Role.INPUT]
    deadline = time.monotonic() + timeout
    last_report = 0.0
    while True:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker stopped (exit {worker.returncode}); see its log")
        try:
            behind = lag(settings.kafka_bootstrap, settings.app_id, inputs)
        except KafkaException as exc:
            if not exc.args[0].retriable():
                raise
            behind = -1  # the group coordinator is still starting: ask again
        if behind == 0:
            info("the worker has processed every input event")
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker is still {behind} events behind after {timeout:.0f}s")
        if behind > 0 and time.monotonic() - last_report > 5:
            info(f"waiting for the worker: {behind} input events not yet processed…")
            last_report = time.monotonic()
        time.sleep(1)
