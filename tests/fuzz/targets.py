"""What each fuzzer feeds and what it accepts back, shared by hypothesis and atheris.

A target returns normally when the input was parsed into valid events or refused the
documented way: `ImportFailed` for an importer (it names the file, and where), `InvalidEvent`
for the edge decoder (which then becomes a dead letter). Anything else escapes, and is the
failure the fuzzers look for.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import InvalidEvent, decode, encode
from schemas.topics import DEAD_LETTER
from services.importers import ImportFailed, parse_bank, parse_psp
from services.importers.batch import ImportBatch
from services.runtime.edge import RawMessage, accept, rejection

_SCRATCH = Path(tempfile.mkdtemp(prefix="o2c-fuzz-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)


def scratch_file(name: str, raw: bytes) -> Path:
    """`raw` as a file: the importers' public entry points take a path, as `o2c import` does."""
    path = _SCRATCH / name
    path.write_bytes(raw)
    return path


def refused_or_valid(parse: Callable[[], ImportBatch]) -> ImportBatch | None:
    """The batch a parser returns, None when it refused the file; each event must survive
    the codec unchanged (a parser's output is what the matcher will decode)."""
    try:
        batch = parse()
    except ImportFailed as refusal:
        problem = refusal.problem
    else:
        for event in batch.events:
            assert decode(encode(event)) == event
        return batch
    assert problem.strip(), "a refusal must say what is wrong"
    return None


def bank(raw: bytes, format: str | None, *, balance_check: bool = True) -> ImportBatch | None:
    """`o2c import bank FILE [--format F] [--no-balance-check]` over `raw`."""
    path = scratch_file("statement", raw)
    return refused_or_valid(lambda: parse_bank(path, format, balance_check=balance_check))


def csv_statement(raw: bytes, mapping: bytes, *, account: str | None = None) -> ImportBatch | None:
    """`o2c import bank FILE --mapping MAPPING [--account A]` over `raw` and `mapping`."""
    path = scratch_file("statement.csv", raw)
    mapping_path = scratch_file("mapping.toml", mapping)
    return refused_or_valid(lambda: parse_bank(path, mapping=mapping_path, account=account))


def psp(raw: bytes, provider: str) -> ImportBatch | None:
    """`o2c import psp FILE --provider P` over `raw`."""
    path = scratch_file("report.csv", raw)
    return refused_or_valid(lambda: parse_psp(path, provider))


_T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def edge(
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]] = (),
) -> CloudEvent | ev.EventRejected:
    """What the worker does with one Kafka record: the event, or the dead letter it sends."""
    message = RawMessage(topic, 0, 42, key, value, _T0, tuple(headers))
    try:
        return accept(message)
    except InvalidEvent as problem:
        letter = rejection(message, problem, "o2c-fuzz")
    assert letter.data.error, "a rejection must name at least one problem"
    # The dead letter itself must be a valid event of its topic, readable back.
    assert letter.type in DEAD_LETTER.type_names
    assert decode(encode(letter), max_bytes=2**31) == letter
    return letter
