"""`o2c`: one entry point for topics, the worker, publishing, validation and inspection.

Example:
    o2c topics create && o2c worker &
    o2c publish orders.jsonl && o2c tail o2c.matches --from-beginning --until-idle 5
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback
from collections.abc import Callable, Sequence

from services.cli import commands, config, db, doctor, importing, reports, simulate, web
from services.connections import unreachable
from services.settings import SettingsError, get_settings

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="o2c",
        description="o2c-matcher: real-time order-to-cash reconciliation on Kafka.",
        epilog="Settings come from O2C_* environment variables (see README, Configuration).",
    )
    parser.add_argument(
        "--debug", action="store_true", help="log everything, and show tracebacks of failures"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    topics = sub.add_parser("topics", help="create or list the contract's Kafka topics")
    topics_sub = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    create = topics_sub.add_parser(
        "create", help="create every topic of the contract that is missing (idempotent)"
    )
    create.set_defaults(handler=commands.topics_create)
    listing = topics_sub.add_parser("list", help="list the contract's topics and their settings")
    listing.set_defaults(handler=commands.topics_list)

    worker = sub.add_parser(
        "worker", help="run the stream processors in the foreground (Ctrl-C stops)"
    )
    worker.add_argument("--metrics-port", type=int, help="Prometheus port (O2C_METRICS_PORT)")
    worker.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="worker processes in one group; 0: one per core (O2C_WORKER_PROCESSES)",
    )
    worker.set_defaults(handler=commands.worker)

    publish = sub.add_parser(
        "publish", help="validate a CloudEvents JSON-lines file, then publish it"
    )
    publish.add_argument("file", help="JSON lines, one CloudEvent a line ('-' for stdin)")
    publish.set_defaults(handler=commands.publish)

    validate = sub.add_parser(
        "validate", help="check a CloudEvents JSON-lines file without a broker"
    )
    validate.add_argument("file", help="JSON lines, one CloudEvent a line ('-' for stdin)")
    validate.set_defaults(handler=commands.validate)

    tail = sub.add_parser("tail", help="print the events of a topic as they arrive")
    tail.add_argument("topic", help="topic name, e.g. o2c.matches")
    tail.add_argument("--from-beginning", action="store_true", help="start at offset 0")
    tail.add_argument(
        "--until-idle", type=float, metavar="SECONDS", help="stop after SECONDS with no event"
    )
    tail.add_argument("--json", action="store_true", help="print each event as one JSON line")
    tail.set_defaults(handler=commands.tail)

    clock = sub.add_parser("clock", help="publish time passing as events")
    clock_sub = clock.add_subparsers(dest="clock_command", required=True, metavar="ACTION")
    close_day = clock_sub.add_parser("close-day", help="publish o2c.day.closed.v1 for DATE")
    close_day.add_argument("date", help="the business day that ended, YYYY-MM-DD")
    close_day.set_defaults(handler=commands.close_day)

    summary = sub.add_parser("summary", help="reconciliation summary read from the output topics")
    summary.add_argument(
        "--until-idle",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="read until no output arrived for SECONDS (default 3)",
    )
    summary.add_argument(
        "--orders-from",
        metavar="FILE",
        help="count only the orders that appear in this JSON-lines file",
    )
    summary.set_defaults(handler=commands.summary)

    schemas = sub.add_parser("schemas", help="JSON Schema files of the event contract")
    schemas_sub = schemas.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    export = schemas_sub.add_parser(
        "export", help="write one JSON Schema file per event type (default: schemas/json/)"
    )
    export.add_argument("--dir", help="where to write them")
    export.set_defaults(handler=commands.schemas_export)

    dlq = sub.add_parser("dlq", help="inspect and replay dead letters (o2c.dead-letter)")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dlq_list = dlq_sub.add_parser("list", help="one line per dead letter")
    dlq_show = dlq_sub.add_parser("show", help="one dead letter in full, with its original bytes")
    dlq_show.add_argument("id", help="the dead letter's id, or a unique prefix of it")
    dlq_show.add_argument(
        "--reveal",
        action="store_true",
        help="show account numbers and IBANs unmasked (logged, with the OS user)",
    )
    dlq_replay = dlq_sub.add_parser(
        "replay", help="publish dead letters again to their original topic, once fixed upstream"
    )
    dlq_replay.add_argument("--id", action="append", default=[], help="only this id (repeatable)")
    dlq_replay.add_argument("--dry-run", action="store_true", help="list what would be replayed")
    for action in (dlq_list, dlq_replay):
        action.add_argument(
            "--since", help="rejected at or after, e.g. 2026-11-02 or an RFC 3339 time"
        )
        action.add_argument("--topic", help="only dead letters from this original topic")
    dlq_list.set_defaults(handler=commands.dlq_list)
    dlq_show.set_defaults(handler=commands.dlq_show)
    dlq_replay.set_defaults(handler=commands.dlq_replay)

    demo = sub.add_parser(
        "demo",
        help="run the worker on the bundled sample and print the reconciliation summary",
    )
    demo.set_defaults(handler=commands.demo)

    importing.register(sub)
    simulate.register(sub)
    db.register(sub)
    reports.register(sub)
    doctor.register(sub)
    web.register(sub)
    config.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Piped into `head`, a command should stop quietly, not print a BrokenPipeError.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    if args.debug:
        logging.basicConfig(
            level=logging.DEBUG, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except (commands.CommandError, SettingsError) as exc:
        print(f"o2c: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        settings = get_settings()
        missing = unreachable(exc, settings.kafka_bootstrap, settings.database_url)
        if missing is None:
            raise
        if args.debug:
            traceback.print_exc()
        print(f"o2c: {missing}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
