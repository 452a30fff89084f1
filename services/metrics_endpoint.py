"""The /metrics endpoint of a process: the worker's and the projections' alike.

Apart from the metric definitions, so that importing it brings no series of the other
process into this one's registry.
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on `host`:`port` from a background thread; port 0 means do not serve.

    A port already taken costs the metrics, not the process: the matching goes on, the
    scraper sees the target down (an alert), and the log says which setting to change."""
    if not port:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        logging.getLogger(__name__).warning(
            "metrics not served: cannot listen on %s:%d (%s); set another port"
            " (O2C_METRICS_PORT, O2C_PROJECTION_METRICS_PORT, O2C_WEB_METRICS_PORT) or 0 for none",
            host,
            port,
            exc.strerror or exc,
        )
