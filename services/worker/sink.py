"""Producing outputs from faust agents without losing any.

Every send is remembered until `drained`: the ledger waits for the broker to acknowledge
a batch's outputs before it records the batch's new state, so a crash at any point leaves
either the old state (the batch is processed again and its outputs, with the same ids,
sent again) or the new state with its outputs already on the broker. Dead letters are
awaited one by one, before the offset of the message they replace may move on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import faust

from schemas.base import CloudEvent
from schemas.codec import InvalidEvent, encode
from schemas.topics import DEAD_LETTER, OUTPUT_TOPICS, Topic, topic_for
from services import metrics
from services.worker.edge import RawMessage, accept, rejection

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
        self._pending: list[asyncio.Future[Any]] = []

    async def send(self, events: Iterable[CloudEvent]) -> None:
        for event in events:
            if event.source != self._source:  # the deployment's name for itself
                event = event.model_copy(update={"source": self._source})
            key = event.partition_key()
            topic = topic_for(event)
            future = await self._topics[topic.name].send(
                key=None if key is None else key.encode(),
                value=encode(event),
                # Lets a consumer skip types it does not handle without parsing the value
                # (the CloudEvents Kafka binding's name for the attribute).
                headers={"ce_type": event.type.encode()},
            )
            self._pending.append(future)
            metrics.OUTPUTS.labels(self._processor, event.type).inc()

    async def send_raw(
        self, topic: Topic, key: str, value: bytes, headers: dict[str, bytes] | None = None
    ) -> None:
        future = await self._topics[topic.name].send(key=key.encode(), value=value, headers=headers)
        self._pending.append(future)

    async def send_to_partition(self, topic: Topic, value: bytes, partition: int) -> None:
        self._pending.append(await self._topics[topic.name].send(value=value, partition=partition))

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

    async def drained(self) -> None:
        """Wait until the broker has acknowledged everything sent; raise if it refused any."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
