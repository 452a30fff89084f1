"""Producing outputs from faust agents without losing any.

faust flushes its producer before each offset commit, so an output sent while handling an
event is on the broker before that event's offset is committed. A failed delivery stops the
worker (the uncommitted events are then processed again on restart) rather than letting a
later commit skip past it. Dead letters are rarer and stricter: each is awaited until the
broker acknowledges it, before the agent moves to the next message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import faust

from schemas.base import CloudEvent
from schemas.codec import InvalidEvent, encode
from schemas.topics import DEAD_LETTER, OUTPUT_TOPICS, Topic, topic_for
from services import metrics
from services.worker.edge import RawMessage, accept, rejection

log = logging.getLogger(__name__)

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def raw_topic(app: faust.App, *topics: Topic) -> Any:
    return app.topic(*(t.name for t in topics), **RAW)


class Sink:
    def __init__(self, app: faust.App, processor: str, source: str) -> None:
        self._app = app
        self._processor = processor
        self._source = source
        self._topics = {t.name: raw_topic(app, t) for t in OUTPUT_TOPICS}

    async def send(self, events: Iterable[CloudEvent]) -> None:
        for event in events:
            key = event.partition_key()
            topic = topic_for(event)
            future = await self._topics[topic.name].send(
                key=None if key is None else key.encode(),
                value=encode(event),
                # Lets a consumer skip types it does not handle without parsing the value
                # (the CloudEvents Kafka binding's name for the attribute).
                headers={"ce_type": event.type.encode()},
            )
            future.add_done_callback(self._check_delivery)
            metrics.OUTPUTS.labels(self._processor, event.type).inc()

    async def send_raw(self, topic: Topic, key: str, value: bytes) -> None:
        future = await self._topics[topic.name].send(key=key.encode(), value=value)
        future.add_done_callback(self._check_delivery)

    async def send_to_partition(self, topic: Topic, value: bytes, partition: int) -> None:
        future = await self._topics[topic.name].send(value=value, partition=partition)
        future.add_done_callback(self._check_delivery)

    async def accept(self, message: RawMessage) -> CloudEvent | None:
        """The event in `message`, or None once it has been dead-lettered."""
        try:
            return accept(message)
        except InvalidEvent as exc:
            await self.dead_letter(message, exc)
            return None

    async def dead_letter(self, message: RawMessage, problem: InvalidEvent) -> None:
        letter = rejection(message, problem, self._source)
        key = letter.partition_key()
        future = await self._topics[DEAD_LETTER.name].send(
            key=None if key is None else key.encode(), value=encode(letter)
        )
        await future  # acknowledged by the broker before the offset may move on
        metrics.DEAD_LETTERS.labels(message.topic).inc()

    def _check_delivery(self, future: asyncio.Future[Any]) -> None:
        error = None if future.cancelled() else future.exception()
        if error is None:
            return
        log.critical("delivery of an output failed, stopping the worker: %r", error)
        self._app._crash(error)
