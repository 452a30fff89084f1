"""The faust application: configuration shared by every stream processor."""

from __future__ import annotations

from collections.abc import Iterable

import faust

from schemas.topics import OUTPUT_MAX_MESSAGE_BYTES, Role, Topic
from services.kafka_io import ensure_topics
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


def table_options(settings: Settings) -> dict[str, int]:
    """RocksDB options of every table (faust's RocksDBOptions), bounding its memory."""
    mib = 1024 * 1024
    return {
        "write_buffer_size": settings.rocksdb_write_buffer_mb * mib,
        "max_write_buffer_number": 2,
        "block_cache_size": settings.rocksdb_block_cache_mb * mib,
    }


def ensure_changelogs(settings: Settings, tables: Iterable[str]) -> None:
    """Create the tables' changelog topics before faust subscribes to them.

    Left to faust, a changelog is created just before the worker joins its group; on a fresh
    deployment the group's metadata can then miss it: the assignment skips it ("Ignoring
    missing topic") and the worker stalls, or a table write fails with PartitionsMismatch
    ("changelog topic has 0 partitions")."""
    changelogs = [
        Topic(
            f"{settings.app_id}-{name}-changelog",
            "the table's key",
            (),
            Role.INTERNAL,
            partitions=settings.topic_partitions,
            compacted=True,
        )
        for name in tables
    ]
    ensure_topics(settings.kafka_bootstrap, changelogs)
