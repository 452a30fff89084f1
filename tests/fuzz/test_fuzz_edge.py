"""The edge decoder over Kafka records: valid events edited field by field and byte by byte,
with right, wrong and missing keys, on their topic and on others. Each record is accepted as
an event of its topic or becomes a dead letter with its reason; nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import decode, encode
from schemas.topics import ALL_TOPICS, HOME_TOPIC
from tests.fuzz import targets
from tests.fuzz.budget import FUZZ, run
from tests.fuzz.mutations import TOKENS, apply, mutations
from tests.strategies import EVENT_STRATEGIES

DEMO = Path(__file__).resolve().parents[2] / "services" / "samples" / "demo.jsonl"
EVENT_CLASSES = list(EVENT_STRATEGIES)
TOPIC_NAMES = [t.name for t in ALL_TOPICS] + ["o2c.unknown", ""]

ODD_VALUES: list[Any] = [
    None,
    "",
    " ",
    0,
    -1,
    2**63 - 1,  # orjson writes 64-bit integers only; larger ones come from byte edits
    -(2**63),
    1.5,
    1e308,
    True,
    [],
    {},
    [[[]]],
    {"": None},
    "NaN",
    "Infinity",
    "1E+999999",
    "-0",
    "9" * 40,
    "0.0000001",
    "129.900",
    "2023-02-30",
    "2023-02-30T10:00:00Z",
    "2026-11-01T25:61:00Z",
    "2026-11-01T10:00:00",
    "2026-11-01T10:00:00+99:00",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "\x00",
    "x" * 5000,
    "o2c.order.placed.v1",
    "o2c.order.placed.v99",
    "EUR",
    "eur",
    "XXX",
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _edit(document: Any, edit: tuple[int, int, int]) -> Any:
    """One field of the document dropped, set to an odd value, or given a sibling."""
    kind, which, value = edit
    paths = _paths(document)
    if not paths:
        return ODD_VALUES[value % len(ODD_VALUES)]
    *parents, last = paths[which % len(paths)]
    parent = document
    for step in parents:
        parent = parent[step]
    if kind % 3 == 0:
        del parent[last]
    elif kind % 3 == 1:
        parent[last] = ODD_VALUES[value % len(ODD_VALUES)]
    elif isinstance(parent, dict):
        parent[f"extra{value}"] = ODD_VALUES[value % len(ODD_VALUES)]
    return document


@st.composite
def records(draw: st.DrawFn) -> tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]:
    event = draw(st.sampled_from(EVENT_CLASSES).flatmap(lambda cls: EVENT_STRATEGIES[cls]))
    topic = HOME_TOPIC[event.type].name
    key_text = event.partition_key()
    encoded = encode(event)
    value: bytes | None = encoded
    shape = draw(st.sampled_from(["as is", "fields", "fields", "bytes", "bytes", "random", "none"]))
    if shape == "fields":
        document = orjson.loads(encoded)
        for edit in draw(
            st.lists(
                st.tuples(st.integers(0, 2), st.integers(0, 999), st.integers(0, 999)),
                min_size=1,
                max_size=4,
            )
        ):
            document = _edit(document, edit)
        value = orjson.dumps(document)
    elif shape == "bytes":
        value = apply(encoded, draw(mutations()))
    elif shape == "random":
        value = draw(
            st.binary(max_size=512) | st.sampled_from([b"[" * 5000, b'{"a":' * 2000, TOKENS[-1]])
        )
    elif shape == "none":
        value = None
    if draw(st.integers(0, 4)) == 0:
        topic = draw(st.sampled_from(TOPIC_NAMES))
    key = None if key_text is None else key_text.encode()
    key = draw(st.sampled_from([key, key, key, None, b"", b"\xff\xfe", b"ORD-other"]))
    headers = draw(st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=40)), max_size=3))
    return topic, key, value, headers


def test_records_become_events_of_their_topic_or_dead_letters_with_a_reason() -> None:
    @FUZZ
    @given(records())
    def check(record: tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]) -> None:
        topic, key, value, headers = record
        targets.edge(topic, key, value, headers)

    run(check)


def test_demo_records_edited_byte_by_byte_are_events_or_dead_letters() -> None:
    lines = DEMO.read_bytes().splitlines()

    @FUZZ
    @given(st.sampled_from(lines), mutations())
    def check(line: bytes, edits: list[tuple[str, int, int]]) -> None:
        event = decode(line)
        key = event.partition_key()
        key_bytes = None if key is None else key.encode()
        targets.edge(HOME_TOPIC[event.type].name, key_bytes, apply(line, edits))

    run(check)
