"""Rows of a PSP report grouped into payouts, with the sign rules every provider shares.

Signs: an item's `gross` is what the payment moved (charges positive, refunds and lost
chargebacks negative); its `fee` is what the PSP kept (positive when charged, negative when
given back); so net = gross - fee, for each item and for the payout. `net_amount` is the
amount the report says was paid out when it says so (Adyen's MerchantPayout row), else
gross - fee: a report whose items do not add up to its payout reaches the matcher as such.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from pydantic import ValidationError

from schemas import events as ev
from services.importers.batch import Skipped
from services.importers.errors import ImportFailed
from services.importers.events import describe, payout_event
from services.importers.money import fit_currency, parse_decimal
from services.importers.text import csv_records

Kind = str  # "charge" | "refund" | "chargeback" | "adjustment"


@dataclass(frozen=True)
class PayoutRow:
    payout_id: str
    payout_date: date
    currency: str
    payment_id: str
    order_id: str | None
    kind: Kind
    gross: Decimal
    fee: Decimal
    where: str


@dataclass(frozen=True)
class ReportedPayout:
    net: Decimal
    payout_date: date | None
    where: str
    # Set when the payout may stand without items: all its money was carried in from
    # earlier batches (an Adyen batch with only a Balancetransfer and its MerchantPayout).
    itemless_currency: str | None = None


@dataclass(frozen=True)
class Parsed:
    """What a provider's reader found: item rows, the payouts the report states itself, and
    what it deliberately did not turn into a payout (shown in the import summary)."""

    rows: list[PayoutRow]
    reported: dict[str, ReportedPayout] = field(default_factory=dict)
    skipped: tuple[Skipped, ...] = ()


@dataclass(frozen=True)
class Signature:
    """Columns that give away a report this importer does not read, and what to do instead."""

    columns: tuple[str, ...]  # all present in the header row
    what: str  # "a WeChat Pay 资金账单 (fund-flow bill)"
    instead: str  # "download the 交易账单 (trade bill, type ALL)"
    absent: tuple[str, ...] = ()  # and none of these


# The report each provider's reader takes, by columns only it has, so that a file handed to
# the wrong reader is named with the --provider that reads it. (A PayPal report's first row
# is its RH report header.)
PROVIDER_REPORTS: tuple[tuple[str, Signature], ...] = (
    (
        "stripe",
        Signature(
            ("automatic_payout_id", "balance_transaction_id"),
            "a Stripe payout reconciliation report",
            "import it with --provider stripe",
        ),
    ),
    (
        "adyen",
        Signature(
            ("Batch Number", "Psp Reference", "Merchant Account"),
            "an Adyen settlement details report",
            "import it with --provider adyen",
        ),
    ),
    (
        "alipay",
        Signature(
            ("支付宝交易号", "商家实收（元）"),
            "an Alipay 业务明细 (business detail) bill",
            "import it with --provider alipay",
        ),
    ),
    (
        "wechat_pay",
        Signature(
            ("微信订单号", "应结订单金额"),
            "a WeChat Pay 交易账单 (trade bill)",
            "import it with --provider wechat_pay",
        ),
    ),
    (
        "paypal",
        Signature(
            ("RH",),
            "a PayPal SFTP report",
            "import a Settlement Report (STL) with --provider paypal",
        ),
    ),
)
# Consumers' own bills, which no reader takes; either Chinese reader may be handed one.
PERSONAL_BILLS = (
    Signature(
        ("收/支", "交易状态"),
        "an Alipay personal bill (个人交易明细)",
        "export the merchant 业务明细 (business detail) bill from the Alipay 对账中心 instead",
    ),
    Signature(
        ("收/支", "当前状态"),
        "a WeChat Pay personal bill (微信支付账单明细)",
        "export the merchant 交易账单 (trade bill, type ALL) from the WeChat Pay merchant "
        "platform instead",
    ),
)


def other_providers(provider: str) -> tuple[Signature, ...]:
    """The reports of every provider but this one."""
    return tuple(sig for name, sig in PROVIDER_REPORTS if name != provider)


def refuse_other_report(
    path: str, where: str, header: Sequence[str], signatures: Sequence[Signature], reads: str
) -> None:
    """ImportFailed naming the report the header belongs to, when it matches a signature."""
    present = set(header)
    for sig in signatures:
        if all(c in present for c in sig.columns) and not present.intersection(sig.absent):
            raise ImportFailed(
                path,
                f"{where}, column {sig.columns[0]}",
                f"this is {sig.what}, not {reads}: {sig.instead}",
            )


def refuse_other_report_lines(
    path: str, lines: Sequence[str], signatures: Sequence[Signature], reads: str
) -> None:
    """`refuse_other_report` on every line read as comma-separated cells: Chinese bills put
    a preface of varying length before their header row."""
    for number, line in enumerate(lines, 1):
        cells = [c.strip().strip('`"') for c in line.split(",")]
        refuse_other_report(path, f"line {number}", cells, signatures, reads)


def decode_chinese_bill(path: str, raw: bytes) -> str:
    """UTF-8 (with or without BOM) if the bytes are valid UTF-8, else GBK.

    Unambiguous: GBK text with any Chinese character in it is not valid UTF-8, and text that
    is both (ASCII only) reads the same either way. A spreadsheet round trip often saves a
    GBK download as UTF-8."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")  # a superset of GBK: never rejects a valid GBK file
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportFailed(path, f"line {line}", "neither UTF-8 nor GBK text") from None


def decode_utf8_report(
    path: str, raw: bytes, signatures: Sequence[Signature], reads: str, what: str
) -> str:
    """UTF-8 (with or without BOM), as Stripe, Adyen and PayPal write their reports.

    Bytes that are not UTF-8 are refused; when they read as GBK and are another provider's
    bill (an Alipay download is GBK), the refusal names that bill instead."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        with contextlib.suppress(UnicodeDecodeError):
            refuse_other_report_lines(path, raw.decode("gb18030").splitlines(), signatures, reads)
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportFailed(path, f"line {line}", f"not UTF-8 text, as {what} is") from None


def amount(path: str, where: str, column: str, text: str | None, currency: str) -> Decimal:
    if text is None or not text.strip():
        text = "0"
    try:
        return fit_currency(parse_decimal(text), currency)
    except ValueError as exc:
        raise ImportFailed(path, f"{where}, column {column}", str(exc)) from None


def csv_rows(
    path: str,
    text: str,
    required: Sequence[str],
    first_line: int = 1,
    signatures: Sequence[Signature] = (),
    reads: str = "",
) -> Iterable[tuple[str, dict[str, str]]]:
    """(where, row) for each data row; cells stripped of whitespace and trailing tabs.

    A header matching one of `signatures` is refused as that other report, before the
    missing-columns check that would only say what is absent."""
    # newline="": csv itself then reads "\r", "\n" and "\r\n" as line ends, as it must.
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    for record in csv_records(path, reader, first_line):
        line = first_line + reader.line_num - 1
        cells = [c.strip() for c in record]
        if header is None:
            header = cells
            refuse_other_report(path, f"line {line}", header, signatures, reads)
            missing = [c for c in required if c not in header]
            if missing:
                raise ImportFailed(
                    path, f"line {line}, column {missing[0]}", f"header lacks columns {missing}"
                )
            continue
        if not any(cells):
            continue
        if len(cells) < len(header):
            cells += [""] * (len(header) - len(cells))
        yield f"line {line}", dict(zip(header, cells, strict=False))
    if header is None:
        raise ImportFailed(path, f"line {first_line}", "empty report: no header row")


def build_payouts(
    path: str, provider: str, rows: list[PayoutRow], reported: dict[str, ReportedPayout]
) -> list[ev.PayoutReported]:
    groups: dict[str, list[PayoutRow]] = {}
    for row in rows:
        groups.setdefault(row.payout_id, []).append(row)
    events = [
        _payout(path, provider, payout_id, items, reported.get(payout_id))
        for payout_id, items in groups.items()
    ]
    for payout_id, report in reported.items():
        if payout_id in groups:
            continue
        if report.itemless_currency is None or report.payout_date is None:
            raise ImportFailed(path, report.where, f"payout {payout_id} has no items in the file")
        data = _payout_data(
            path, report.where, payout_id, provider, report.itemless_currency, [], report.net,
            report.payout_date,
        )  # fmt: skip
        events.append(payout_event(data, source=f"o2c-import/{provider}"))
    return events


def _payout(
    path: str,
    provider: str,
    payout_id: str,
    items: list[PayoutRow],
    report: ReportedPayout | None,
) -> ev.PayoutReported:
    currency = items[0].currency
    for item in items:
        if item.currency != currency:
            raise ImportFailed(
                path, item.where, f"payout {payout_id} mixes {currency} and {item.currency}"
            )
    net = report.net if report is not None else sum((i.gross - i.fee for i in items), Decimal(0))
    payout_date = max(i.payout_date for i in items)
    if report is not None and report.payout_date:
        payout_date = report.payout_date
    data = _payout_data(
        path, items[0].where, payout_id, provider, currency, items, net, payout_date
    )
    return payout_event(data, source=f"o2c-import/{provider}")


def _payout_data(
    path: str,
    where: str,
    payout_id: str,
    provider: str,
    currency: str,
    items: list[PayoutRow],
    net: Decimal,
    payout_date: date,
) -> ev.PayoutReportedData:
    try:
        return ev.PayoutReportedData(
            payout_id=payout_id,
            provider=provider,
            currency=currency,
            gross_amount=sum((i.gross for i in items), Decimal(0)),
            fee_amount=sum((i.fee for i in items), Decimal(0)),
            net_amount=net,
            payout_date=payout_date,
            items=tuple(
                ev.PayoutItem(
                    payment_id=i.payment_id,
                    order_id=i.order_id or None,
                    kind=i.kind,  # checked by the model
                    gross=i.gross,
                    fee=i.fee,
                )
                for i in items
            ),
        )
    except ValidationError as exc:
        raise ImportFailed(path, where, f"payout {payout_id}: {describe(exc)}") from None
