"""A long-running o2c command started by a benchmark, its memory sampled until it stops."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from bench.procfs import kib


class Process:
    """A long-running o2c command whose resident memory is sampled until it stops.

    A worker that stops on its own during a benchmark fails the benchmark: with the runtime
    of services/runtime nothing but a defect stops one, and a restart would hide it.
    """

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self.argv = argv
        self.env = env
        self.restarts = 0  # reported by the scale run; no process is restarted any more
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
        raise RuntimeError(f"{self.name} stopped (exit {code}); see {self.log}")

    def stop(self) -> None:
        self.sample()
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(60)
        except subprocess.TimeoutExpired:
            self.popen.kill()
