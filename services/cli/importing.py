"""`o2c import bank|psp FILE`: statements and PSP reports in, facts out, each fact once.

Example:
    o2c import bank statement.sta --dry-run
    o2c import psp settlement_detail_report_batch_42.csv --provider adyen
"""

from __future__ import annotations

import argparse
from typing import Any

from services.cli.commands import CommandError
from services.cli.output import info, table
from services.importers import BANK_FORMATS, PROVIDERS, ImportFailed, parse_bank, parse_psp
from services.importers.batch import ImportBatch
from services.importers.summary import summarize


def register(subparsers: Any) -> None:
    """Add `import bank` and `import psp` to the `o2c` parser."""
    parser = subparsers.add_parser(
        "import", help="import a bank statement or PSP settlement report (once)"
    )
    sub = parser.add_subparsers(dest="import_command", required=True, metavar="KIND")
    bank = sub.add_parser(
        "bank", help="MT940/MT942, camt.052/053/054, BAI2 or mapped CSV → o2c.bank-lines"
    )
    bank.add_argument("file", help="the statement file")
    bank.add_argument(
        "--format", choices=BANK_FORMATS, help="the file's format (default: detected)"
    )
    bank.add_argument("--mapping", help="TOML column mapping for a CSV statement (see README)")
    bank.add_argument("--account", help="account id for every line (overrides the file's)")
    bank.add_argument("--dry-run", action="store_true", help="parse, validate, summarize only")
    bank.add_argument(
        "--no-balance-check",
        action="store_true",
        help="import even if a statement's balances or control totals do not add up "
        "(for a bank known to export inconsistent totals; the entry count is still checked)",
    )
    bank.set_defaults(handler=import_bank)
    psp = sub.add_parser("psp", help="a PSP settlement report → o2c.settlements")
    psp.add_argument("file", help="the report file")
    psp.add_argument("--provider", required=True, choices=PROVIDERS)
    psp.add_argument("--dry-run", action="store_true", help="parse, validate, summarize only")
    psp.set_defaults(handler=import_psp)


def _broker_before_publishing(dry_run: bool) -> None:
    """A file's own faults are said first (they need fixing whatever the broker); a sound
    file meeting a missing broker gets only the broker's line, before any summary."""
    if not dry_run:
        from services.cli.commands import reachable_kafka

        reachable_kafka()


def import_bank(args: argparse.Namespace) -> int:
    try:
        batch = parse_bank(
            args.file,
            args.format,
            args.mapping,
            args.account,
            balance_check=not args.no_balance_check,
        )
    except ImportFailed as exc:
        raise CommandError(str(exc)) from None
    _broker_before_publishing(args.dry_run)
    return _finish(batch, args.dry_run)


def import_psp(args: argparse.Namespace) -> int:
    try:
        batch = parse_psp(args.file, args.provider)
    except ImportFailed as exc:
        raise CommandError(str(exc)) from None
    _broker_before_publishing(args.dry_run)
    return _finish(batch, args.dry_run)


def _finish(batch: ImportBatch, dry_run: bool) -> int:
    headers, rows = summarize(batch.events)
    noun = "bank lines" if batch.kind not in PROVIDERS else "payouts"
    info(f"{batch.path}: {batch.kind}, {len(batch.events)} {noun}")
    if rows:
        print(table(headers, rows))
    for skipped in batch.skipped:
        info(f"skipped {skipped.where}: {skipped.reason}")
    for check in batch.checks:
        info(check)
    if dry_run:
        info("dry run: nothing published")
        return 0
    # Kafka is loaded only when publishing, so a dry run needs no broker libraries' setup.
    from confluent_kafka import KafkaException

    from services.importers.publishing import TopicMissing, publish_new
    from services.settings import get_settings

    try:
        outcome = publish_new(get_settings().kafka_bootstrap, batch.events)
    except (TopicMissing, KafkaException) as exc:
        raise CommandError(f"{batch.path}: nothing published: {exc}") from None
    print(f"{outcome.published} new, {outcome.already} already imported")
    return 0
