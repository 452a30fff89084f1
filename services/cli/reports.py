"""`o2c report …` and `o2c exceptions …`: the read models for people.

Example:
    o2c report ageing --as-of 2026-11-30 --by channel
    o2c report dso --format csv > dso.csv
    o2c exceptions assign 6e57a357 --to alice
    o2c exceptions resolve 6e57a357 --note "customer paid twice; refunded"

Assigning and resolving publish events to o2c.mismatches (the log stays the truth); the
projection applies them like any other event, so the change shows once it has run.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
from datetime import UTC, date, datetime
from typing import Any

import orjson

from schemas.base import CloudEvent
from services import manual_actions
from services.cli.commands import CommandError, reachable_kafka
from services.cli.output import info, table
from services.connections import ServiceUnreachable
from services.database_roles import login_of, login_refused
from services.kafka_io import EventProducer
from services.settings import get_settings


def register(sub: Any) -> None:
    report = sub.add_parser("report", help="read-model reports from PostgreSQL")
    report.add_argument("kind", choices=("ageing", "dso", "exposure", "exceptions", "daily"))
    report.add_argument(
        "--as-of", type=_date, metavar="DATE", help="YYYY-MM-DD (default: last closed day)"
    )
    report.add_argument(
        "--by", choices=("customer", "channel", "region"), default="customer", help="ageing only"
    )
    report.add_argument("--status", choices=("open", "assigned", "resolved"), help="exceptions")
    report.add_argument(
        "--limit",
        type=_count,
        metavar="N",
        help="exceptions: the N oldest (default: all)",
    )
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")
    report.set_defaults(handler=report_command)

    exceptions = sub.add_parser("exceptions", help="work the exception queue")
    ex_sub = exceptions.add_subparsers(dest="exceptions_command", required=True, metavar="ACTION")
    assign = ex_sub.add_parser("assign", help="give a mismatch to someone (publishes an event)")
    assign.add_argument("id", help="mismatch id, or a unique prefix of it")
    assign.add_argument("--to", required=True, metavar="WHO")
    assign.add_argument("--note")
    assign.set_defaults(handler=exceptions_assign)
    resolve = ex_sub.add_parser("resolve", help="close a mismatch by hand (publishes an event)")
    resolve.add_argument("id", help="mismatch id, or a unique prefix of it")
    resolve.add_argument("--note", required=True)
    resolve.set_defaults(handler=exceptions_resolve)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _count(text: str) -> int:
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"not a whole number above 0: {text!r}")


def _reports() -> Any:
    from projections.reports import Reports

    settings = get_settings()
    url = settings.role_database_url("reader")
    try:
        return Reports(url, settings.read_schema)
    except ServiceUnreachable as exc:
        if not login_refused(exc.reason):
            raise
        raise CommandError(
            f"PostgreSQL refused the reader's login {login_of(url).user} ({exc.reason}):"
            " `o2c db migrate` creates it, with the password of O2C_READER_DATABASE_URL"
        ) from None


def report_command(args: argparse.Namespace) -> int:
    reports = _reports()
    try:
        as_of = args.as_of or reports.business_today()
        if args.kind == "ageing":
            result = reports.ageing(as_of, args.by)
        elif args.kind == "dso":
            result = reports.dso(args.as_of)
        elif args.kind == "exposure":
            result = reports.exposure()
        elif args.kind == "exceptions":
            result = reports.exceptions(args.status, args.limit)
        else:
            result = reports.daily(as_of)
    finally:
        reports.close()
    print(render(result.title, result.headers, result.rows, args.format))
    if result.more:
        info(f"the {len(result.rows):,} oldest shown, more left out: raise --limit, or drop it")
    return 0


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def render(title: str, headers: tuple[str, ...], rows: list[tuple[Any, ...]], fmt: str) -> str:
    if fmt == "json":
        records = [dict(zip(headers, row, strict=True)) for row in rows]
        # Amounts stay decimal strings, as in the event contract.
        return orjson.dumps(records, default=str, option=orjson.OPT_INDENT_2).decode()
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows([[_cell(c) for c in row] for row in rows])
        return out.getvalue().rstrip("\n")
    body = table(headers, [[_cell(c) for c in row] for row in rows])
    return f"{title}\n\n{body}" if rows else f"{title}: nothing to show"


def _lookup(mismatch_id: str) -> dict[str, Any]:
    reports = _reports()
    try:
        return dict(reports.exception(mismatch_id))
    except LookupError as exc:
        raise CommandError(str(exc)) from None
    finally:
        reports.close()


def _by() -> str:
    # The person at the terminal: the events name who acted (the contract's `by`).
    return getpass.getuser()


def _publish(event: CloudEvent) -> None:
    manual_actions.publish(EventProducer(reachable_kafka()), [event])


def exceptions_assign(args: argparse.Namespace) -> int:
    found = _lookup(args.id)
    try:
        event = manual_actions.assignment(
            found,
            args.to,
            by=_by(),
            source=get_settings().source,
            now=datetime.now(UTC),
            note=args.note,
        )
    except manual_actions.ActionRefused as exc:
        raise CommandError(str(exc)) from None
    _publish(event)
    info(f"assigned {found['mismatch_id']} to {args.to} (published {event.id})")
    return 0


def exceptions_resolve(args: argparse.Namespace) -> int:
    found = _lookup(args.id)
    try:
        event = manual_actions.resolution(
            found, args.note, by=_by(), source=get_settings().source, now=datetime.now(UTC)
        )
    except manual_actions.ActionRefused as exc:
        raise CommandError(str(exc)) from None
    _publish(event)
    info(f"resolved {found['mismatch_id']} by hand (published {event.id})")
    return 0
