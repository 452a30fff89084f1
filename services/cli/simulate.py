"""`o2c simulate`: a realistic order-to-cash stream with its ground truth, and optionally
publish it.

    o2c simulate --orders 10000 --days 14 --seed 7 --out sim.jsonl
    o2c simulate --orders 1000 --days 5 --out sim.jsonl --truth sim.truth.jsonl --publish
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from schemas.codec import decode
from schemas.events import ReasonCode
from schemas.topics import ALL_TOPICS, topic_for
from services.cli.commands import CommandError
from services.cli.output import info, table
from services.simulator import SimConfig, simulate


class SimulateError(CommandError):
    pass


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="write a simulated order-to-cash stream and its ground truth (JSON lines)",
        description=(
            "Orders on web, Tmall, JD, POS and B2B; payments, PSP payouts, bank lines, "
            "invoices, refunds, disputes; out-of-order and duplicate delivery; one "
            "day.closed per day; anomalies for every reason code. Deterministic: the same "
            "arguments give the same bytes."
        ),
    )
    parser.add_argument("--orders", type=int, default=1_000, help="orders to place (1000)")
    parser.add_argument("--days", type=int, default=10, help="days on which orders are placed")
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument("--out", required=True, help="the stream, CloudEvents JSON lines")
    parser.add_argument("--truth", help="the ground truth (default: OUT with .truth.jsonl)")
    parser.add_argument(
        "--rate",
        type=float,
        help="share of orders carrying each reason code (default 0.004 each)",
    )
    parser.add_argument("--publish", action="store_true", help="then publish it to Kafka")
    parser.set_defaults(handler=run)


def truth_path(out: str) -> str:
    path = Path(out)
    return str(path.with_name(path.name.removesuffix(".jsonl") + ".truth.jsonl"))


def run(args: argparse.Namespace) -> int:
    try:
        config = SimConfig(orders=args.orders, days=args.days, seed=args.seed)
        if args.rate is not None:
            config = replace(config, rates=dict.fromkeys(ReasonCode, args.rate))
    except ValueError as exc:
        raise SimulateError(str(exc)) from None
    if args.publish:
        from services.cli.commands import reachable_kafka

        reachable_kafka()  # before simulating, not after
    truth = args.truth or truth_path(args.out)
    started = time.perf_counter()
    with Path(args.out).open("wb") as out, Path(truth).open("wb") as truth_out:
        counters = simulate(config, out, truth_out)
    seconds = time.perf_counter() - started
    info(
        f"{args.out}: {counters.events} events ({counters.orders} orders, "
        f"{counters.bank_lines} bank lines, {counters.payouts} payouts) in {seconds:.1f} s, "
        f"{counters.events / seconds:,.0f} events/s; truth in {truth}"
    )
    if args.publish:
        publish_stream(args.out)
    return 0


def publish_stream(path: str) -> int:
    """Publish the file line by line, its bytes unchanged, each to its type's home topic."""
    from services.cli.commands import reachable_kafka
    from services.kafka_io import EventProducer, ensure_topics
    from services.settings import get_settings

    settings = get_settings()
    ensure_topics(reachable_kafka(), ALL_TOPICS)
    out = EventProducer(settings.kafka_bootstrap)
    per_topic: Counter[str] = Counter()
    with Path(path).open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            raw = line.rstrip(b"\r\n")
            if not raw:
                continue
            event = decode(raw)
            topic = topic_for(event).name
            out.send_raw(topic, event.partition_key(), raw, event.type)
            per_topic[topic] += 1
            if number % 100_000 == 0:
                info(f"published {number} events")
    delivered = out.flush()
    print(table(("topic", "events"), sorted(per_topic.items())))
    info(f"published {delivered} events to {settings.kafka_bootstrap}")
    return delivered
