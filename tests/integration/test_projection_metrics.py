"""The projections' Prometheus metrics follow what a batch did: batches, messages by
outcome, rows, the newest applied message's broker time and the lag behind the topics."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from schemas.topics import ORDERS
from tests.conftest import Services
from tests.factories import order_placed, unique
from tests.projection_support import catch_up, publish, start_at_end

pytestmark = pytest.mark.integration


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_projection_metrics_count_the_batches_rows_and_messages_applied(
    services: Services, read_schema: str
) -> None:
    start_at_end(services, read_schema)
    before = {
        "batches": _value("o2c_projection_batches_total"),
        "rows": _value("o2c_projection_rows_total"),
        "applied": _value("o2c_projection_messages_total", outcome="applied"),
    }
    published_at = time.time()
    orders = [order_placed(unique("ORD"), "10.00") for _ in range(3)]
    publish(services, orders)

    catch_up(services, read_schema)

    assert _value("o2c_projection_batches_total") > before["batches"]
    assert _value("o2c_projection_messages_total", outcome="applied") >= before["applied"] + 3
    assert _value("o2c_projection_rows_total") >= before["rows"] + 3
    # The broker's timestamp of the newest message applied: the publication, not event time.
    assert _value("o2c_projection_last_applied_timestamp_seconds") >= published_at - 5
    lags = [
        s.value
        for family in REGISTRY.collect()
        if family.name == "o2c_projection_lag"
        for s in family.samples
        if s.labels["topic"] == ORDERS.name
    ]
    assert lags
    assert all(lag == 0 for lag in lags)
