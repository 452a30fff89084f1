"""The read side's speed: events per second into PostgreSQL for one projection process,
and the time to rebuild the read models from offset 0.

A synthetic history in the shape of the matcher's outputs (per order: order.placed, two
balance.changed, order.matched; every tenth order a mismatch.detected) is published to the
real topics. The projection then consumes it into a fresh schema that starts where the
topics ended before the history was published; the rebuild consumes every topic from
offset 0 (the bench's events and whatever the topics held before) into fresh tables and
swaps them in. Both decode and validate every event with the contract's models.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import sql

from projections.migrate import migrate
from projections.rebuild import rebuild
from projections.runner import ProjectionRunner, end_positions, unique_group
from schemas.topics import MATCHES, MISMATCHES, ORDERS
from services.kafka_io import producer

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _cloud_event(kind: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "bench",
        "type": f"o2c.{kind}.v1",
        "time": at.isoformat(),
        "data": data,
    }


def history(orders: int) -> list[tuple[str, str, bytes, str]]:
    """(topic, key, value, type) in publishing order; about 4.1 events per order."""
    out: list[tuple[str, str, bytes, str]] = []
    run = uuid.uuid4().hex[:6]
    for i in range(orders):
        order_id = f"BENCH-{run}-{i}"
        customer = f"BC-{i % 500}"
        at = T0 + timedelta(minutes=i)
        total = f"{100 + i % 900}.{i % 100:02d}"
        due = (at + timedelta(days=30)).date().isoformat()
        base = {"order_id": order_id, "customer_id": customer, "currency": "CNY"}
        events = [
            (
                ORDERS.name,
                _cloud_event(
                    "order.placed",
                    base
                    | {
                        "channel": ("web", "tmall", "jd", "pos", "b2b")[i % 5],
                        "total_amount": total,
                        "placed_at": at.isoformat(),
                    },
                    at,
                ),
            ),
        ]
        money = {"refunded": "0", "settled": "0", "due_date": due, "channel": "web"}
        events.append(
            (
                MATCHES.name,
                _cloud_event(
                    "balance.changed",
                    base
                    | money
                    | {"receivable": total, "paid": "0", "open_balance": total, "status": "open"},
                    at,
                ),
            )
        )
        paid_at = at + timedelta(days=i % 40)
        events.append(
            (
                MATCHES.name,
                _cloud_event(
                    "balance.changed",
                    base
                    | money
                    | {"receivable": total, "paid": total, "open_balance": "0", "status": "paid"},
                    paid_at,
                ),
            )
        )
        events.append(
            (
                MATCHES.name,
                _cloud_event(
                    "order.matched",
                    base
                    | {
                        "receivable": total,
                        "paid": total,
                        "refunded": "0",
                        "settled": "0",
                        "written_off": "0",
                    },
                    paid_at,
                ),
            )
        )
        if i % 10 == 0:
            events.append(
                (
                    MISMATCHES.name,
                    _cloud_event(
                        "mismatch.detected",
                        {
                            "mismatch_id": str(uuid.uuid4()),
                            "reason": "UNDERPAID",
                            "severity": "medium",
                            "currency": "CNY",
                            "difference": "1.00",
                            "order_id": order_id,
                            "detected_at": paid_at.isoformat(),
                        },
                        paid_at,
                    ),
                )
            )
        out.extend((topic, order_id, orjson.dumps(e), e["type"]) for topic, e in events)
    return out


def publish(bootstrap: str, messages: list[tuple[str, str, bytes, str]]) -> float:
    p = producer(bootstrap, **{"linger.ms": 20, "batch.num.messages": 10000})
    started = time.perf_counter()
    for topic, key, value, kind in messages:
        while True:
            try:
                p.produce(topic, key=key, value=value, headers={"ce_type": kind})
                break
            except BufferError:
                p.poll(0.2)
    remaining = p.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} bench events not delivered")
    return time.perf_counter() - started


class _Timed(ProjectionRunner):
    first_batch: float | None = None
    last_batch: float = 0.0

    def handle_batch(self, messages: Any) -> None:
        if self.first_batch is None:
            self.first_batch = time.perf_counter()
        super().handle_batch(messages)
        self.last_batch = time.perf_counter()


def _drop(conninfo: str, schema: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _project(
    bootstrap: str,
    conninfo: str,
    start: dict[Any, int],
    targets: dict[Any, int],
    batch_max: int,
    trust_own_outputs: bool,
    **options: Any,
) -> dict[str, Any]:
    """One projection process from `start` to `targets` into a fresh schema. `options`:
    the runner's (claims_in_memory=True drops processed_events' key first, as a rebuild)."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    migrate(conninfo, schema)
    if options.get("claims_in_memory"):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "ALTER TABLE {}.processed_events DROP CONSTRAINT processed_events_pkey"
                ).format(sql.Identifier(schema))
            )
    seed = ProjectionRunner(bootstrap, conninfo, schema)
    seed.store.save_offsets(start)
    seed.close()
    runner = _Timed(
        bootstrap,
        conninfo,
        schema,
        group_id=unique_group("bench-projection"),
        batch_max=batch_max,
        trust_own_outputs=trust_own_outputs,
        **options,
    )
    try:
        stats = runner.run(until_offsets=targets, max_seconds=1800)
    finally:
        runner.close()
        _drop(conninfo, schema)
    assert runner.first_batch is not None
    seconds = runner.last_batch - runner.first_batch
    return {
        "messages": stats.messages,
        "batches": stats.batches,
        "seconds": round(seconds, 2),
        "events_per_second": round(stats.messages / seconds) if seconds else None,
    }


def run(
    bootstrap: str, conninfo: str, orders: int, batch_max: int, rebuild_too: bool
) -> dict[str, Any]:
    """The projection over the same history twice: validating every event (the baseline,
    as before the trusted decode) and with o2c-matcher's outputs decoded as trusted (the
    default); then the rebuild, with the default."""
    start = end_positions(bootstrap)
    messages = history(orders)
    publish_seconds = publish(bootstrap, messages)
    targets = end_positions(bootstrap)
    result: dict[str, Any] = {
        "events": len(messages),
        "publish_seconds": round(publish_seconds, 2),
        "projection_validating_all": _project(
            bootstrap, conninfo, start, targets, batch_max, trust_own_outputs=False
        ),
        "projection": _project(
            bootstrap, conninfo, start, targets, batch_max, trust_own_outputs=True
        ),
    }
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    if rebuild_too:
        started = time.perf_counter()
        done = rebuild(bootstrap, conninfo, schema, batch_max=batch_max)
        total = time.perf_counter() - started
        result["rebuild"] = {
            "messages": done.stats.messages,
            "seconds": round(total, 2),
            "events_per_second": round(done.stats.messages / total),
            "extrapolated_seconds_for_1m": round(total / done.stats.messages * 1_000_000, 1),
        }
    _drop(conninfo, schema)
    return result


def on_log(
    bootstrap: str,
    conninfo: str,
    batch_max: int,
    *,
    project_too: bool,
    rebuild_too: bool,
    rebuild_options: dict[str, Any] | None = None,
    project_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The projection (one process, from offset 0) and the rebuild over the log as it
    stands, publishing nothing: the same real log for runs of two versions of the code."""
    targets = end_positions(bootstrap)
    result: dict[str, Any] = {"log_messages": sum(targets.values())}
    if project_too:
        start = dict.fromkeys(targets, 0)
        result["projection"] = _project(
            bootstrap, conninfo, start, targets, batch_max, True, **(project_options or {})
        )
        result["projection"]["options"] = project_options or {}
    if rebuild_too:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        started = time.perf_counter()
        done = rebuild(bootstrap, conninfo, schema, batch_max=batch_max, **(rebuild_options or {}))
        total = time.perf_counter() - started
        result["rebuild"] = {
            "options": rebuild_options or {},
            "messages": done.stats.messages,
            "read_models_seconds": round(done.stats.seconds, 2),
            "timeline_messages": done.timeline.messages if done.timeline else None,
            "timeline_seconds": round(done.timeline.seconds, 2) if done.timeline else None,
            "seconds": round(total, 2),
            "events_per_second": round(done.stats.messages / total),
        }
        _drop(conninfo, schema)
    return result


def main() -> int:
    import argparse
    import json
    import os
    from pathlib import Path

    from services.settings import get_settings

    parser = argparse.ArgumentParser(
        description="projection and rebuild over the log as it stands (publishes nothing); "
        "fill it first with `python -m bench --projections ORDERS`"
    )
    parser.add_argument("--no-project", action="store_true")
    parser.add_argument("--no-rebuild", action="store_true")
    parser.add_argument(
        "--claims-in-db",
        action="store_true",
        help="rebuild with one processed_events index insert per event (as before)",
    )
    parser.add_argument(
        "--project-claims-in-memory",
        action="store_true",
        help="project as a rebuild does: ids checked in memory, processed_events unindexed",
    )
    parser.add_argument("--label", default="", help="recorded with the figures, e.g. a commit")
    args = parser.parse_args()
    settings = get_settings()
    load = os.getloadavg()
    result = on_log(
        settings.kafka_bootstrap,
        settings.database_url,
        settings.projection_batch_max,
        project_too=not args.no_project,
        rebuild_too=not args.no_rebuild,
        rebuild_options={"claims_in_memory": False} if args.claims_in_db else None,
        project_options={"claims_in_memory": True} if args.project_claims_in_memory else None,
    )
    result |= {"label": args.label, "load_average_before": [round(x, 2) for x in load]}
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (out / f"projections-log-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
