"""Prometheus metrics of the stream processors."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS_IN = Counter("o2c_events_processed_total", "Input events processed", ["processor", "type"])
OUTPUTS = Counter("o2c_outputs_total", "Output events produced", ["processor", "type"])
DEAD_LETTERS = Counter(
    "o2c_dead_letters_total", "Messages rejected to the dead-letter topic", ["original_topic"]
)
MISMATCHES = Counter("o2c_mismatches_detected_total", "Mismatches detected", ["reason"])
OPEN_BALANCE = Gauge("o2c_open_balance", "Open balance of orders this worker holds", ["currency"])
LATENCY = Histogram(
    "o2c_event_to_output_seconds",
    "Event time of the input to the moment its outputs were produced",
    ["processor"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600),
)


def serve(port: int) -> None:
    """Expose /metrics on `port` from a background thread; 0 means do not serve."""
    if port:
        start_http_server(port, addr="127.0.0.1")
