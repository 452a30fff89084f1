"""Prometheus metrics of the stream processors."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Counted by the worker and the projections alike, so defined beside the masking.
from services.card_masking import CARD_NUMBERS_MASKED as CARD_NUMBERS_MASKED
from services.metrics_endpoint import serve as serve  # the worker's endpoint

EVENTS_IN = Counter("o2c_events_processed_total", "Input events processed", ["processor", "type"])
OUTPUTS = Counter("o2c_outputs_total", "Output events produced", ["processor", "type"])
DEAD_LETTERS = Counter(
    "o2c_dead_letters_total", "Messages rejected to the dead-letter topic", ["original_topic"]
)
MISMATCHES = Counter("o2c_mismatches_detected_total", "Mismatches detected", ["reason"])
OPEN_BALANCE = Gauge("o2c_open_balance", "Open balance of orders this worker holds", ["currency"])
LATENCY = Histogram(
    "o2c_event_to_output_seconds",
    "Event time of the input to the broker's acknowledgement of its outputs",
    ["processor"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600),
)

REROUTED = Counter(
    "o2c_rerouted_records_total",
    "Input records on another partition than murmur2(key)'s, re-routed to their task",
    ["topic"],
)
RESTORED = Counter("o2c_restored_records_total", "Changelog records restored into stores")
COMMIT_SECONDS = Histogram(
    "o2c_commit_seconds",
    "A batch's flush, changelog, offset commit and checkpoint",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 10),
)
LAG = Gauge(
    "o2c_consumer_lag", "Records on the broker not yet read, per task input", ["topic", "partition"]
)
