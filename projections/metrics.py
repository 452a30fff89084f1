"""Prometheus metrics of the projection process (`o2c projections run`).

Defined apart from the worker's (services/metrics.py) so that neither endpoint shows the
other's series; dead letters use the worker's counter, as they mean the same thing.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.metrics_endpoint import serve as serve  # the projections' endpoint

BATCHES = Counter("o2c_projection_batches_total", "Batches committed to the read models")
MESSAGES = Counter(
    "o2c_projection_messages_total",
    "Messages read, by what became of them",
    ["outcome"],  # applied, duplicate, skipped (a type no read model uses), dead_letter
)
ROWS = Counter("o2c_projection_rows_total", "Rows written to the read models' tables")
BATCH_SECONDS = Histogram(
    "o2c_projection_batch_seconds",
    "One batch: decode, project, write and commit",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LAG = Gauge(
    "o2c_projection_lag",
    "Messages on the broker not yet in the read models, per topic partition",
    ["topic", "partition"],
)
LAST_APPLIED = Gauge(
    "o2c_projection_last_applied_timestamp_seconds",
    "Broker timestamp of the newest message whose offset the read models have committed",
)
DSO_ALERTS = Counter(
    "o2c_dso_alerts_raised_total",
    "o2c.dso.target_exceeded.v1 alerts decided when a business day closed",
    ["currency"],
)
