"""The handlers behind each `o2c` subcommand: parse arguments, call a service, print."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import uuid
from collections import Counter
from datetime import UTC, date, datetime, time
from pathlib import Path

import orjson

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.codec import InvalidEvent, decode
from schemas.events import type_name
from schemas.topics import (
    ALL_TOPICS,
    CLOCK,
    DEAD_LETTER,
    MATCHES,
    MISMATCHES,
    by_name,
    topic_for,
)
from services.cli.output import info, table
from services.connections import require_kafka
from services.dead_letters import DeadLetter, read_dead_letters, replay, select
from services.display_masking import mask_data, mask_key, mask_message_value, mask_text
from services.jsonl import describe_errors, read_file
from services.kafka_io import EventProducer, ensure_topics, read_until_idle
from services.settings import get_settings
from services.summary import Summary

log = logging.getLogger(__name__)


class CommandError(Exception):
    """A failure the user can fix; printed without a traceback."""


def reachable_kafka() -> str:
    """The bootstrap servers, once they answer (else ServiceUnreachable within seconds)."""
    bootstrap = get_settings().kafka_bootstrap
    require_kafka(bootstrap)
    return bootstrap


def topics_create(_args: argparse.Namespace) -> int:
    outcomes = ensure_topics(reachable_kafka(), ALL_TOPICS)
    rows = [
        (
            o.topic.name,
            o.state,
            o.partitions,
            o.topic.config().get("retention.ms", "default"),
            "compact" if o.topic.compacted else "delete",
        )
        for o in outcomes
    ]
    print(table(("topic", "state", "partitions", "retention.ms", "cleanup"), rows))
    return 0


def topics_list(_args: argparse.Namespace) -> int:
    rows = [
        (t.name, t.role.value, t.key, t.partitions, ", ".join(t.type_names)) for t in ALL_TOPICS
    ]
    print(table(("topic", "role", "key", "partitions", "event types"), rows))
    return 0


def worker(args: argparse.Namespace) -> int:
    from services.worker.runner import run_worker

    settings = get_settings()
    processes = settings.worker_processes if args.processes is None else args.processes
    return run_worker(settings, metrics_port=args.metrics_port, processes=processes)


def _read_valid(path: str) -> list[CloudEvent]:
    try:
        results = read_file(path)
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    errors = describe_errors(path, results)
    for line in errors:
        print(line, file=sys.stderr)
    invalid = sum(1 for r in results if r.error)
    info(f"{path}: {len(results)} events, {len(results) - invalid} valid, {invalid} invalid")
    if invalid:
        raise CommandError(f"{path}: {invalid} invalid events; fix them and run again")
    return [r.event for r in results if r.event is not None]


def validate(args: argparse.Namespace) -> int:
    _read_valid(args.file)
    return 0


def publish(args: argparse.Namespace) -> int:
    bootstrap = reachable_kafka()  # before reading: a missing broker is the one thing said
    events = _read_valid(args.file)
    out = EventProducer(bootstrap)
    per_topic: Counter[str] = Counter()
    for number, event in enumerate(events, start=1):
        out.send(event)
        per_topic[topic_for(event).name] += 1
        if number % 50_000 == 0:
            info(f"published {number}/{len(events)}")
    delivered = out.flush()
    print(table(("topic", "events"), sorted(per_topic.items())))
    info(f"published {delivered} events to {bootstrap}")
    return 0


def tail(args: argparse.Namespace) -> int:
    try:
        topic = by_name(args.topic)
    except KeyError as exc:
        raise CommandError(str(exc.args[0])) from None
    idle = args.until_idle if args.until_idle is not None else float("inf")
    for msg in read_until_idle(
        reachable_kafka(), [topic.name], idle, from_beginning=args.from_beginning
    ):
        # Shown with account numbers, IBANs and card numbers masked (docs/operations.md).
        value = mask_message_value(msg.value() or b"")
        if args.json:
            sys.stdout.buffer.write(value + b"\n")
        else:
            print(_one_line(msg.partition() or 0, msg.offset() or 0, value))
        sys.stdout.flush()
    return 0


def _one_line(partition: int, offset: int, value: bytes) -> str:
    try:
        event = decode(value)
    except InvalidEvent as exc:
        return f"{partition:>3}:{offset:<8} (invalid: {mask_text(str(exc))})"
    fields = " ".join(
        f"{k}={v}"
        for k, v in mask_data(event.type, event.data.model_dump(mode="json")).items()
        if v not in (None, [], ()) and not isinstance(v, list | dict)
    )
    return f"{partition:>3}:{offset:<8} {event.type:<30} {fields}"


def close_day(args: argparse.Namespace) -> int:
    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        raise CommandError(f"{args.date!r} is not a date in the form YYYY-MM-DD") from None
    settings = get_settings()
    end_of_day = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
    kind = type_name(ev.DayClosed)
    event = ev.DayClosed(
        specversion="1.0",
        # One id per business day: closing the same day twice is a redelivery.
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"o2c:day.closed:{day.isoformat()}")),
        source=settings.source,
        type=kind,
        time=end_of_day,
        data=ev.DayClosedData(date=day),
    )
    out = EventProducer(reachable_kafka())
    out.send(event, CLOCK)
    out.flush()
    info(f"published {kind} for {day.isoformat()} to {CLOCK.name}")
    return 0


def demo(_args: argparse.Namespace) -> int:
    from services.cli.demo import run_demo

    reachable_kafka()
    try:
        return run_demo(get_settings())
    except RuntimeError as exc:
        raise CommandError(str(exc)) from None


def _order_ids_in(path: str) -> set[str]:
    return {
        str(r.event.data.order_id)  # type: ignore[attr-defined]
        for r in read_file(path)
        if r.event is not None and getattr(r.event.data, "order_id", None)
    }


def summary(args: argparse.Namespace) -> int:
    result = Summary(_order_ids_in(args.orders_from) if args.orders_from else None)
    topics = [MATCHES.name, MISMATCHES.name, DEAD_LETTER.name]
    for msg in read_until_idle(reachable_kafka(), topics, args.until_idle):
        if msg.topic() == DEAD_LETTER.name:
            result.add_dead_letter((msg.key() or b"").decode("utf-8", "replace"))
        else:
            result.add_output(orjson.loads(msg.value() or b"{}"))
    headers, values = result.order_row()
    print(table(headers, [values]))
    print()
    print(table(("mismatch reason", "open", "resolved"), result.reason_rows()))
    return 0


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since {text!r} is not a date or an RFC 3339 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def dlq_list(args: argparse.Namespace) -> int:
    letters = select(read_dead_letters(reachable_kafka()), _since(args.since), args.topic)
    rows = [
        (
            letter.id[:8],
            letter.event.data.rejected_at.isoformat(timespec="seconds"),
            f"{letter.event.data.original_topic}/{letter.event.data.partition}"
            f"@{letter.event.data.offset}",
            _shorten(_shown_key(letter) or "-", 24),
            _shorten(mask_text(letter.event.data.error), 80),
        )
        for letter in letters
    ]
    print(table(("id", "rejected at", "from", "key", "reason"), rows))
    info(f"{len(rows)} dead letters")
    return 0


def dlq_show(args: argparse.Namespace) -> int:
    letters = select(read_dead_letters(reachable_kafka()), ids=[args.id])
    if len(letters) != 1:
        found = "no dead letter" if not letters else f"{len(letters)} dead letters"
        raise CommandError(f"{found} with id {args.id!r}; see `o2c dlq list`")
    (letter,) = letters
    if args.reveal:
        # Who looked and when: the log is where an audit of personal data looks.
        log.warning(
            "o2c dlq show --reveal: dead letter %s shown unmasked to OS user %s at %s",
            letter.id,
            getpass.getuser(),
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
    print("\n".join(shown_dead_letter(letter, reveal=args.reveal)))
    return 0


def shown_dead_letter(letter: DeadLetter, *, reveal: bool = False) -> list[str]:
    """`o2c dlq show`'s lines: account numbers, IBANs and card numbers masked in the key,
    the reason and the original bytes unless `reveal`."""
    data = letter.event.data
    value = letter.original_value
    return [
        f"id:           {letter.id}",
        f"rejected at:  {data.rejected_at.isoformat()}",
        f"from:         {data.original_topic} partition {data.partition} offset {data.offset}",
        f"key:          {data.original_key if reveal else _shown_key(letter)}",
        f"event id:     {letter.event.causationid or '-'}",
        f"reason:       {data.error if reveal else mask_text(data.error)}",
        f"value ({len(value)} bytes{'' if reveal else ', masked: --reveal shows it'}):",
        _readable(value if reveal else mask_message_value(value)),
    ]


def _shown_key(letter: DeadLetter) -> str | None:
    return mask_key(letter.event.data.original_topic, letter.event.data.original_key)


def _readable(value: bytes) -> str:
    try:
        return orjson.dumps(orjson.loads(value), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return repr(value[:4000])


def dlq_replay(args: argparse.Namespace) -> int:
    bootstrap = reachable_kafka()
    letters = select(read_dead_letters(bootstrap), _since(args.since), args.topic, args.id)
    if not letters:
        info("nothing to replay")
        return 0
    if args.dry_run:
        for letter in letters:
            data = letter.event.data
            print(f"{letter.id[:8]}  {data.original_topic}  {mask_text(data.error)}")
        info(f"{len(letters)} dead letters would be replayed")
        return 0
    replayed = replay(bootstrap, letters)
    info(
        f"replayed {replayed} messages to their original topics; any still invalid will be "
        "dead-lettered again with their reason"
    )
    return 0


def schemas_export(args: argparse.Namespace) -> int:
    from schemas.json_schema import SCHEMA_DIR, export_json_schemas

    directory = Path(args.dir) if args.dir else SCHEMA_DIR
    written = export_json_schemas(directory)
    info(f"wrote {len(written)} JSON Schema files to {directory}")
    return 0
