from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from schemas.codec import decode
from schemas.topics import HOME_TOPIC, Role
from services.kafka_io import end_offsets
from tests.conftest import Services, service_env

pytestmark = pytest.mark.e2e

O2C = str(Path(sys.executable).with_name("o2c"))


def test_simulate_publish_puts_every_line_on_its_home_topic(
    services: Services, tmp_path: Path
) -> None:
    stream = tmp_path / "sim.jsonl"
    # Input topics only: a running worker writes its outputs meanwhile (o2c.matches, …).
    topics = sorted({t.name for t in HOME_TOPIC.values() if t.role is Role.INPUT})
    before = {
        (tp.topic, tp.partition): tp.offset for tp in end_offsets(services.kafka_bootstrap, topics)
    }

    done = subprocess.run(
        [
            O2C,
            "simulate",
            "--orders",
            "200",
            "--days",
            "2",
            "--seed",
            "5",
            "--out",
            str(stream),
            "--publish",
        ],
        capture_output=True,
        text=True,
        env=service_env(services),
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    expected = Counter(
        HOME_TOPIC[decode(line).type].name for line in stream.read_bytes().splitlines()
    )
    after = end_offsets(services.kafka_bootstrap, topics)
    published: Counter[str] = Counter()
    for tp in after:
        published[tp.topic] += tp.offset - before[(tp.topic, tp.partition)]
    assert set(expected) <= set(topics), "the simulator writes facts, never outputs"
    assert +published == expected
