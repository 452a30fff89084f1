"""How long each fuzzer runs: a bounded, repeatable pass in `make test`, longer with `make fuzz`.

O2C_FUZZ_SECONDS unset or 0: one pass of O2C_FUZZ_EXAMPLES examples (default 600) from a
fixed seed, so a red run is caused by the change under test and not by luck. Above 0: passes
from fresh random seeds until that many seconds went by, for each target; hypothesis keeps
what fails in its example database (.hypothesis/), and the next run tries it first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from hypothesis import HealthCheck, settings

SECONDS = float(os.environ.get("O2C_FUZZ_SECONDS", "0"))
EXAMPLES = int(os.environ.get("O2C_FUZZ_EXAMPLES", "600"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a 2-core machine shared by many: time per example is noise, not a bug
    derandomize=SECONDS <= 0,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


def run(check: Callable[[], None]) -> None:
    """`check` (a hypothesis test) once, or again and again for O2C_FUZZ_SECONDS."""
    check()
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        check()
