"""The faust application: configuration shared by every stream processor."""

from __future__ import annotations

import faust

from schemas.topics import OUTPUT_MAX_MESSAGE_BYTES
from services.settings import Settings


def create_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=settings.table_store,
        datadir=str(settings.state_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        # Outputs are flushed before every offset commit; acks=all makes "flushed" durable.
        producer_acks=-1,
        # Dead letters carry the original bytes; inputs may exceed 1 MiB (see topics.py).
        producer_max_request_size=OUTPUT_MAX_MESSAGE_BYTES,
        consumer_max_fetch_size=OUTPUT_MAX_MESSAGE_BYTES,
        consumer_auto_offset_reset=settings.auto_offset_reset,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        web_host="127.0.0.1",
        # Never faust's exactly_once: see design.md, principle 3.
        processing_guarantee="at_least_once",
    )
