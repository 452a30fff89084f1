"""The workbench's Prometheus series, and the ASGI middleware that records them.

Apart from the app, like projections/metrics.py, so that a process imports only its own
series. Requests are labelled by their route's template ("/exceptions/{mismatch_id}"),
never by the path a browser sent, so that ids do not become series.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import Counter, Histogram
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "o2c_web_requests",
    "Workbench HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "o2c_web_request_seconds",
    "Workbench time from request to the end of the response, by route template",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
UNAVAILABLE = Counter(
    "o2c_web_unavailable",
    "Workbench requests answered 503 because PostgreSQL or Kafka did not answer",
    ["service"],
)

# Requests that matched no route (probes, typos, scanners) share one label.
UNMATCHED = "other"


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", UNMATCHED)) or UNMATCHED
    return UNMATCHED


class RequestMetrics:
    """Counts each HTTP response by route and status, and times it (body included)."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server sends if the app raises before answering

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = route_template(self.routes, scope)
            REQUESTS.labels(route, scope.get("method", "?"), str(status)).inc()
            REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)
