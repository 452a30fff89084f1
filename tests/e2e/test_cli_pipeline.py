from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from schemas.codec import encode
from tests.conftest import RunningWorker, Services, service_env
from tests.factories import order_placed, payment_captured, unique

pytestmark = pytest.mark.e2e

O2C = str(Path(sys.executable).with_name("o2c"))


def o2c(services: Services, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [O2C, *args], capture_output=True, text=True, env=service_env(services), timeout=timeout
    )


def test_published_file_comes_back_as_order_matched_on_tail(
    services: Services, worker: RunningWorker, tmp_path: Path
) -> None:
    order_id = unique("ORD")
    stream = tmp_path / "orders.jsonl"
    stream.write_bytes(
        encode(order_placed(order_id, "88.80"))
        + b"\n"
        + encode(payment_captured(unique("pay"), order_id, "88.80"))
        + b"\n"
    )

    assert o2c(services, "topics", "create").returncode == 0
    published = o2c(services, "publish", str(stream))
    assert published.returncode == 0, published.stderr
    assert "published 2 events" in published.stderr

    matched = []
    for _attempt in range(20):
        tail = o2c(
            services, "tail", "o2c.matches", "--from-beginning", "--until-idle", "3", "--json"
        )
        assert tail.returncode == 0, tail.stderr
        matched = [
            doc
            for doc in map(orjson.loads, tail.stdout.splitlines())
            if doc["type"] == "o2c.order.matched.v1" and doc["data"]["order_id"] == order_id
        ]
        if matched:
            break
    assert len(matched) == 1
    assert matched[0]["data"]["paid"] == "88.80"


def test_publish_refuses_a_file_with_an_invalid_line(services: Services, tmp_path: Path) -> None:
    stream = tmp_path / "bad.jsonl"
    good = encode(order_placed(unique("ORD"), "1.00"))
    stream.write_bytes(good + b"\n" + good.replace(b'"1.00"', b"1.00") + b"\n")
    result = o2c(services, "publish", str(stream))
    assert result.returncode != 0
    assert f"{stream}:2:" in result.stderr
    assert "data.total_amount" in result.stderr
