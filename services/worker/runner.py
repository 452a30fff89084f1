"""`o2c worker`: start every stream processor in one faust worker, in the foreground."""

from __future__ import annotations

import faust

from services import metrics
from services.settings import Settings
from services.worker.app import create_app
from services.worker.processors import register_processors


def run_worker(settings: Settings, metrics_port: int | None = None) -> int:
    app = create_app(settings)
    register_processors(app, settings)
    metrics.serve(settings.metrics_port if metrics_port is None else metrics_port)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    # faust's progress spinner sets the root logger to DEBUG so that it can spin on every
    # record: every debug line of faust and aiokafka is then built, costing ~8% of the
    # worker's time, and it writes terminal escapes into log files.
    worker.spinner = None
    worker.execute_from_commandline()  # returns only when the worker stops
    return 0
