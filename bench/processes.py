"""A long-running o2c command started by a benchmark: sampled, restarted as deployments do."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from bench.procfs import kib
from services.worker.batches import STOPPED_TO_RETRY

# More than a few restarts in one run means a failure that repeats, not a lost message.
WORKER_RETRIES = 5


class Process:
    """A long-running o2c command whose resident memory is sampled until it stops.

    A worker that exits with STOPPED_TO_RETRY stopped so that its successor reads a batch
    again (a failure, or a message faust lost); it is started again, as compose and k8s
    restart it, up to `retries` times.
    """

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, retries: int = 0
    ) -> None:
        self.name = name
        self.log = log
        self.argv = argv
        self.env = env
        self.retries = retries
        self.restarts = 0
        self.peak_kib = 0
        self.popen = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:  # a restart's output goes after its predecessor's
            return subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env)

    def sample(self) -> int:
        rss = kib(self.popen.pid, "VmRSS")
        self.peak_kib = max(self.peak_kib, rss, kib(self.popen.pid, "VmHWM"))
        return rss

    def check(self) -> None:
        code = self.popen.poll()
        if code is None:
            return
        if code == STOPPED_TO_RETRY and self.restarts < self.retries:
            self.restarts += 1
            print(
                f"[bench] {self.name} stopped to read a batch again (exit {code}); "
                f"restart {self.restarts} of at most {self.retries}, see {self.log}",
                file=sys.stderr,
                flush=True,
            )
            self.popen = self._spawn()
            return
        raise RuntimeError(f"{self.name} stopped (exit {code}); see {self.log}")

    def stop(self) -> None:
        self.sample()
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(60)
        except subprocess.TimeoutExpired:
            self.popen.kill()
