"""How every stateful agent runs: its stream in batches, and the worker stopped at once
when a batch cannot be handled or faust lost a message before it."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable
from typing import Any

import faust

from services.settings import Settings
from services.worker.continuity import BatchHandler, Continuity

log = logging.getLogger(__name__)

# The exit status of a worker that stopped so that its successor handles the batch again.
STOPPED_TO_RETRY = 70


async def or_stop(work: Awaitable[None], where: Any) -> None:
    """Run `work`; on any failure end the process at once.

    Not a graceful stop: faust would acknowledge the messages in hand on the way out and
    could commit past them. Ending here leaves the offsets where they were, and the next
    worker processes the messages again (every effect is idempotent).
    """
    try:
        await work
    except Exception:
        log.critical("stopping the worker: failure while handling %s", where, exc_info=True)
        logging.shutdown()
        os._exit(STOPPED_TO_RETRY)


async def in_batches(app: faust.App, settings: Settings, stream: Any, handle: BatchHandler) -> None:
    """Hand `handle` the stream's messages in batches; faust acknowledges a batch when the
    next one is asked for, so only once `handle` has returned."""
    continuity = Continuity(lambda: app.consumer_generation_id)
    batches = stream.take_events(settings.batch_max_events, settings.batch_within_seconds)
    async for records in batches:
        await or_stop(continuity.then(records, handle), records[-1].message.tp)
