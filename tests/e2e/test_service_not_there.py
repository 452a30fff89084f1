"""Every `o2c` command with nothing listening (issue #21): a command that needs Kafka or
PostgreSQL says so in one line naming the address and what to do, and exits 2 within
10 s, without a traceback; the long-running ones wait instead. No stack needed: the
addresses are closed ports on 127.0.0.1.

The table below names every command of the parser; a new command fails
`test_every_command_is_in_the_table` until it is added, so none can skip these tests.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.cli.main import build_parser

pytestmark = pytest.mark.e2e

O2C = str(Path(sys.executable).with_name("o2c"))
REPO = Path(__file__).resolve().parents[2]
KAFKA = "127.0.0.1:1"
DATABASE = "postgresql://o2c:secret@127.0.0.1:2/o2c"
SAMPLE = str(REPO / "services/samples/demo.jsonl")
STATEMENT = str(REPO / "tests/data/bank/mt940/zenith_statement_number_slash.sta")
REPORT = str(REPO / "tests/data/psp/stripe_payout_reconciliation_itemized.csv")

# command -> (arguments after it, the service it reports missing, or None if it needs none)
SHORT: dict[str, tuple[list[str], str | None]] = {
    "topics create": ([], "Kafka"),
    "topics list": ([], None),
    "publish": ([SAMPLE], "Kafka"),
    "validate": ([SAMPLE], None),
    "tail": (["o2c.matches", "--until-idle", "1"], "Kafka"),
    "clock close-day": (["2026-11-02"], "Kafka"),
    "summary": ([], "Kafka"),
    "schemas export": (["--dir", "{tmp}/schemas"], None),
    "dlq list": ([], "Kafka"),
    "dlq show": (["6e57a357"], "Kafka"),
    "dlq replay": ([], "Kafka"),
    "demo": ([], "Kafka"),
    "import bank": ([STATEMENT], "Kafka"),
    "import psp": ([REPORT, "--provider", "stripe"], "Kafka"),
    "simulate": (["--orders", "20", "--days", "1", "--out", "{tmp}/s.jsonl", "--publish"], "Kafka"),
    "db migrate": ([], "PostgreSQL"),
    "db status": ([], "PostgreSQL"),
    "projections rebuild": ([], "Kafka"),
    "report": (["ageing"], "PostgreSQL"),
    "exceptions assign": (["6e57a357", "--to", "alice"], "PostgreSQL"),
    "exceptions resolve": (["6e57a357", "--note", "paid twice"], "PostgreSQL"),
    "users add": (["bob", "--role", "viewer"], "PostgreSQL"),
    "users list": ([], "PostgreSQL"),
    "users disable": (["bob"], "PostgreSQL"),
    "config show": ([], None),
}
# Long-running: they wait for the service and say so, rather than stop.
WAITING: dict[str, tuple[list[str], str]] = {
    "worker": ([], "Kafka"),
    "projections run": ([], "Kafka"),
    "web": (["--demo", "--port", "18099"], "PostgreSQL"),
}
# Its own exit status and table; tests/integration/test_doctor.py has the rest.
OWN_OUTPUT = {"doctor"}


def leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= leaf_commands(sub, f"{prefix}{name} ")
    return found or {prefix.strip()}


def nothing_listening(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        O2C_KAFKA_BOOTSTRAP=KAFKA,
        O2C_DATABASE_URL=DATABASE,
        O2C_STATE_DIR=str(tmp / "state"),
        O2C_METRICS_PORT="0",
        O2C_LOG_LEVEL="info",
    )
    return env


def test_every_command_is_in_the_table() -> None:
    assert leaf_commands(build_parser()) == set(SHORT) | set(WAITING) | OWN_OUTPUT


@pytest.mark.parametrize("command", sorted(SHORT))
def test_a_command_without_its_service_says_so_in_one_line_and_exits_2_within_10_s(
    command: str, tmp_path: Path
) -> None:
    arguments, service = SHORT[command]
    args = [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    started = time.monotonic()
    done = subprocess.run(
        [O2C, *command.split(), *args],
        stdin=subprocess.DEVNULL,  # `users add` reads a password there
        capture_output=True,
        text=True,
        env=nothing_listening(tmp_path),
        timeout=60,
        cwd=tmp_path,
    )
    seconds = time.monotonic() - started
    if service is None:
        assert done.returncode == 0, done.stderr
        return
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert seconds < 10, f"{seconds:.1f}s"
    assert len(lines) == 1, done.stderr
    address, variable = (
        (KAFKA, "O2C_KAFKA_BOOTSTRAP")
        if service == "Kafka"
        else ("127.0.0.1:2", "O2C_DATABASE_URL")
    )
    assert f"{service} is not reachable at {address}" in lines[0]
    assert "make up" in lines[0]
    assert variable in lines[0]
    assert "secret" not in done.stderr  # the password stays out of the message


def test_debug_shows_the_traceback_behind_the_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [O2C, "--debug", "summary"],
        capture_output=True,
        text=True,
        env=nothing_listening(tmp_path),
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("o2c: Kafka is not reachable at 127.0.0.1:1")


@pytest.mark.parametrize("command", sorted(WAITING))
def test_a_long_running_process_waits_for_its_service_and_says_so_once(
    command: str, tmp_path: Path
) -> None:
    arguments, service = WAITING[command]
    log = tmp_path / "out.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [O2C, *command.split(), *arguments],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=nothing_listening(tmp_path),
        )
    try:
        time.sleep(6)
        assert process.poll() is None, log.read_text()
    finally:
        process.send_signal(signal.SIGTERM if command == "worker" else signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    text = log.read_text()
    assert text.count(f"waiting for {service}") == 1, text
    assert "Traceback" not in text
    assert text.count("Connection refused") <= 3, text  # deduplicated, not one per retry


def test_doctor_with_nothing_listening_names_both_services_and_exits_2(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [O2C, "doctor"], capture_output=True, text=True, env=nothing_listening(tmp_path), timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert time.monotonic() - started < 10
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[2:]}
    assert "unreachable" in rows["kafka"]
    assert KAFKA in rows["kafka"]
    assert "O2C_KAFKA_BOOTSTRAP" in rows["kafka"]
    assert "unreachable" in rows["postgresql"]
    assert "127.0.0.1:2/o2c" in rows["postgresql"]
    assert "O2C_DATABASE_URL" in rows["postgresql"]
    assert done.stderr == ""
