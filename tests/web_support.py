"""Helpers for the workbench's tests: a read schema holding one exception of each kind the
actions need, users of each role, and a watcher of what an action publishes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from confluent_kafka import TopicPartition

from projections.runner import Stats, end_positions, unique_group
from projections.timeline import TimelineRunner
from schemas.base import CloudEvent
from schemas.codec import InvalidEvent, decode
from schemas.topics import MATCHES, MISMATCHES
from services.kafka_io import consumer, end_offsets
from services.settings import Settings
from services.web.users import Users
from tests.conftest import Services
from tests.factories import T0, event, unique
from tests.projection_support import balance, catch_up, projector_url, publish, start_at_end

PASSWORDS = {"viewer": "viewer-password-1", "clerk": "clerk-password-1", "admin": "admin-pass-1"}


@dataclass(frozen=True)
class Seeded:
    overpaid: str  # mismatch id of an OVERPAID on `order`
    ambiguous: str  # mismatch id of an AMBIGUOUS_BANK_LINE with two suggestions
    order: str
    twins: tuple[str, str]  # the two open orders the bank line could pay
    line: str
    customer: str
    users: dict[str, str]  # role -> user name


def settings_for(services: Services, schema: str) -> Settings:
    return Settings(
        kafka_bootstrap=services.kafka_bootstrap,
        database_url=services.database_url,
        read_schema=schema,
    )


def seed(services: Services, schema: str) -> Seeded:
    """Synthetic outputs, as the worker would write them, projected into `schema`."""
    start_at_end(services, schema)
    start_timeline_at_end(services, schema)
    order, customer, line = unique("ORD"), unique("CUST"), unique("BL")
    twins = (unique("ORD"), unique("ORD"))
    overpaid, ambiguous = unique("MM"), unique("MM")
    detected = T0 + timedelta(hours=2)
    events: list[CloudEvent] = [
        balance(order, T0, receivable="100.00", paid="130.00", customer_id=customer),
        *(balance(o, T0, receivable="250.00", customer_id=customer) for o in twins),
        event(
            "mismatch.detected",
            {
                "mismatch_id": overpaid,
                "reason": "OVERPAID",
                "severity": "medium",
                "currency": "CNY",
                "expected": "100.00",
                "actual": "130.00",
                "difference": "30.00",
                "order_id": order,
                "customer_id": customer,
                "detected_at": detected.isoformat(),
            },
            at=detected,
        ),
        event(
            "mismatch.detected",
            {
                "mismatch_id": ambiguous,
                "reason": "AMBIGUOUS_BANK_LINE",
                "severity": "medium",
                "currency": "CNY",
                "actual": "250.00",
                "line_id": line,
                "customer_id": customer,
                "detected_at": detected.isoformat(),
                "suggestions": [
                    {
                        "order_ids": [o],
                        "amount": "250.00",
                        "method": "exact_amount",
                        "confidence": "0.5",
                    }
                    for o in twins
                ],
            },
            at=detected,
        ),
    ]
    publish(services, events)
    catch_up(services, schema, publish_alerts=False)
    catch_up_timeline(services, schema)  # the timeline and the queue's table
    users = Users(services.database_url, schema)
    names = {}
    for role, password in PASSWORDS.items():
        name = unique(role)
        users.add(name, role, password)
        names[role] = name
    return Seeded(overpaid, ambiguous, order, twins, line, customer, names)


def start_timeline_at_end(services: Services, schema: str) -> None:
    r = TimelineRunner(
        services.kafka_bootstrap, projector_url(services), schema, group_id=unique_group("tl")
    )
    try:
        r.store.save_offsets(end_positions(services.kafka_bootstrap, TimelineRunner.topics))
    finally:
        r.close()


def catch_up_timeline(services: Services, schema: str) -> Stats:
    """Run the timeline projection of `schema` until it has read everything published."""
    targets = end_positions(services.kafka_bootstrap, TimelineRunner.topics)
    r = TimelineRunner(
        services.kafka_bootstrap, projector_url(services), schema, group_id=unique_group("tl")
    )
    try:
        return r.run(until_offsets=targets, max_seconds=300)
    finally:
        r.close()


class Published:
    """Reads what is published to the output topics from the moment it is made."""

    def __init__(self, services: Services) -> None:
        self.reader = consumer(services.kafka_bootstrap, unique("web-test"))
        topics = [MISMATCHES.name, MATCHES.name]
        self.reader.assign(
            [
                TopicPartition(tp.topic, tp.partition, tp.offset)
                for tp in end_offsets(services.kafka_bootstrap, topics)
            ]
        )

    def collect(
        self, wanted: Callable[[CloudEvent], bool], expected: int, seconds: float = 20.0
    ) -> list[CloudEvent]:
        """The first `expected` events published that `wanted` accepts (other tests and
        workers may publish to the same topics meanwhile)."""
        found: list[CloudEvent] = []
        deadline = time.monotonic() + seconds
        while len(found) < expected and time.monotonic() < deadline:
            message = self.reader.poll(0.5)
            if message is None or message.error():
                continue
            try:
                published = decode(message.value() or b"", max_bytes=64 * 1024 * 1024)
            except InvalidEvent:
                continue
            if wanted(published):
                found.append(published)
        return found

    def close(self) -> None:
        self.reader.close()


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match is not None, "the page carries no CSRF token"
    return match.group(1)
