"""The workbench's pure pieces: CSRF tokens, the login limit, languages, amounts, the
queue's cursors, roles, and the events a person's action becomes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from schemas import events as ev
from schemas.codec import decode_document
from services import manual_actions
from services.manual_actions import ActionRefused
from services.web.i18n import MESSAGES, format_amount, format_rate, negotiate
from services.web.queries import decode_cursor, encode_cursor
from services.web.security import LoginLimiter, csrf_ok, csrf_token
from services.web.users import User, UserError, check_new

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def test_a_csrf_token_is_made_once_per_session_and_only_it_passes() -> None:
    session: dict[str, Any] = {}
    token = csrf_token(session)
    assert csrf_token(session) == token
    assert csrf_ok(session, token)
    assert not csrf_ok(session, token + "x")
    assert not csrf_ok(session, None)
    assert not csrf_ok({}, token)  # another session has no token: nothing passes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_login_limit_counts_failures_per_address_and_per_name_in_a_window() -> None:
    clock = Clock()
    limiter = LoginLimiter(attempts=3, window=60.0, clock=clock)
    for _ in range(3):
        assert limiter.allowed("10.0.0.1", "alice")
        limiter.failed("10.0.0.1", "alice")
    assert not limiter.allowed("10.0.0.1", "alice")
    assert not limiter.allowed("10.0.0.2", "ALICE")  # the name, from anywhere
    assert not limiter.allowed("10.0.0.1", "bob")  # the address, for any name
    assert limiter.allowed("10.0.0.2", "bob")
    assert 1 <= limiter.retry_after("10.0.0.1", "alice") <= 61
    clock.now += 60.0  # the window, in seconds, has passed
    assert limiter.allowed("10.0.0.1", "alice")


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, None, "en"),
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        (None, "en-GB,en;q=0.9,zh;q=0.8", "en"),
        (None, "fr-FR,zh;q=0.5", "zh"),
        (None, "de", "en"),
        ("en", "zh-CN", "en"),  # the switch wins over the browser
        ("zh", "en", "zh"),
        ("xx", "zh-TW", "zh"),
        (None, "zh;q=bad, en;q=0.1", "en"),
    ],
)
def test_the_language_is_the_switch_else_the_best_accepted(
    cookie: str | None, header: str | None, expected: str
) -> None:
    assert negotiate(cookie, header) == expected


def test_every_label_has_both_languages() -> None:
    assert all(set(v) == {"en", "zh"} and all(v.values()) for v in MESSAGES.values())


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("1234.5", "CNY", "1,234.50"),  # two decimals (ISO 4217 minor units)
        ("1234", "JPY", "1,234"),  # none
        ("1.5", "KWD", "1.500"),  # three
        ("-0.005", "EUR", "-0.00"),  # half to even, at the currency's last decimal
        ("0.015", "EUR", "0.02"),
        ("12345678901234.56", "USD", "12,345,678,901,234.56"),  # no float could keep this
    ],
)
def test_amounts_show_exactly_their_currencys_decimals(
    amount: str, currency: str, shown: str
) -> None:
    assert format_amount(Decimal(amount), currency) == shown


def test_rates_are_percentages_with_one_decimal() -> None:
    assert format_rate(Decimal("0.5833")) == "58.3%"
    assert format_rate(None) == ""


def test_a_queue_cursor_round_trips_and_garbage_is_no_cursor() -> None:
    cursor = encode_cursor(datetime(2026, 11, 2, tzinfo=UTC), "mm-1")
    assert decode_cursor(cursor) == ("2026-11-02 00:00:00+00:00", "mm-1")
    assert decode_cursor("not-a-cursor") is None
    assert decode_cursor(encode_cursor(Decimal("1.50"), "x")) == ("1.50", "x")


def test_roles_include_the_ones_below() -> None:
    clerk = User("c", "clerk")
    assert clerk.may("viewer")
    assert clerk.may("clerk")
    assert not clerk.may("admin")
    assert User("a", "admin").may("clerk")
    assert not User("v", "viewer").may("clerk")


@pytest.mark.parametrize(
    ("name", "role", "password"),
    [("bad name", "clerk", "long enough"), ("ok", "boss", "long enough"), ("ok", "clerk", "short")],
)
def test_a_new_user_needs_a_plain_name_a_known_role_and_eight_characters(
    name: str, role: str, password: str
) -> None:
    with pytest.raises(UserError):
        check_new(name, role, password)


def _exception(**fields: Any) -> dict[str, Any]:
    base = {
        "mismatch_id": "mm-1",
        "reason": "AMBIGUOUS_BANK_LINE",
        "status": "open",
        "currency": "CNY",
        "actual": Decimal("300.00"),
        "order_id": None,
        "payment_id": None,
        "payout_id": None,
        "line_id": "BL-1",
        "customer_id": "C-1",
    }
    return {**base, **fields}


def test_applying_a_combination_gives_each_order_its_open_amount_and_the_last_the_rest() -> None:
    suggestion = ev.Suggestion(
        order_ids=("ORD-1", "ORD-2"),
        amount=Decimal("300.00"),
        method="combination",
        confidence=Decimal("0.6"),
    )
    events = manual_actions.suggestion_applied(
        _exception(),
        suggestion,
        {"ORD-1": Decimal("100.00"), "ORD-2": Decimal("199.80")},
        by="alice",
        source="tests",
        now=NOW,
    )
    first, second, resolved = events
    assert isinstance(first, ev.PaymentApplied)
    assert isinstance(second, ev.PaymentApplied)
    assert [(e.data.order_id, e.data.amount) for e in (first, second)] == [
        ("ORD-1", Decimal("100.00")),
        ("ORD-2", Decimal("200.00")),  # 199.80 open + the 0.20 the line pays beyond it
    ]
    assert {e.data.method for e in (first, second)} == {"manual"}
    assert {e.data.by for e in (first, second)} == {"alice"}
    assert first.partition_key() == "ORD-1"  # on the order's partition, for the ledger
    # The customer whose suspense holds the line, so it is copied there (schemas/topics.py).
    assert {e.data.customer_id for e in (first, second)} == {"C-1"}
    assert isinstance(resolved, ev.MismatchResolved)
    assert (resolved.data.resolution, resolved.data.by) == ("manual", "alice")
    assert resolved.partition_key() == "BL-1"  # where its detection is


def test_a_suggestion_whose_order_is_no_longer_open_is_refused() -> None:
    suggestion = ev.Suggestion(
        order_ids=("ORD-9",), amount=Decimal("300.00"), method="exact_amount", confidence=Decimal(1)
    )
    with pytest.raises(ActionRefused, match="ORD-9"):
        manual_actions.suggestion_applied(_exception(), suggestion, {}, by="a", source="t", now=NOW)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reason": "OVERPAID"}, "not an AMBIGUOUS_BANK_LINE"),
        ({"status": "resolved"}, "already resolved"),
    ],
)
def test_applying_needs_an_unresolved_ambiguous_line(fields: dict[str, Any], message: str) -> None:
    suggestion = ev.Suggestion(
        order_ids=("ORD-1",), amount=Decimal("300.00"), method="exact_amount", confidence=Decimal(1)
    )
    with pytest.raises(ActionRefused, match=message):
        manual_actions.suggestion_applied(
            _exception(**fields), suggestion, {"ORD-1": Decimal(300)}, by="a", source="t", now=NOW
        )


def test_a_resolved_exception_is_neither_assigned_nor_resolved_again() -> None:
    done = _exception(status="resolved")
    with pytest.raises(ActionRefused):
        manual_actions.assignment(done, "bob", by="a", source="t", now=NOW, note=None)
    with pytest.raises(ActionRefused):
        manual_actions.resolution(done, "again", by="a", source="t", now=NOW)


def test_manual_events_without_by_still_decode() -> None:
    # Events published before the field existed (the log keeps them forever).
    old = decode_document(
        {
            "specversion": "1.0",
            "id": "e-1",
            "source": "o2c-matcher",
            "type": "o2c.mismatch.resolved.v1",
            "time": "2026-11-02T09:00:00Z",
            "data": {"mismatch_id": "mm-1", "resolution": "manual", "note": "done"},
        }
    )
    assert isinstance(old, ev.MismatchResolved)
    assert old.data.by is None


def test_requests_are_labelled_by_their_route_template_and_strays_share_one_label() -> None:
    from starlette.responses import Response
    from starlette.routing import Mount, Route

    from services.web.metrics import UNMATCHED, route_template

    def nothing(_request: Any) -> Response:
        return Response()

    routes = [
        Route("/exceptions", nothing, methods=["GET"]),
        Route("/exceptions/{mismatch_id}", nothing, methods=["GET"]),
        Mount("/static", routes=[]),
    ]

    def scope(path: str) -> dict[str, Any]:
        return {"type": "http", "path": path, "method": "GET", "root_path": ""}

    assert route_template(routes, scope("/exceptions")) == "/exceptions"
    assert route_template(routes, scope("/exceptions/MM-123")) == "/exceptions/{mismatch_id}"
    assert route_template(routes, scope("/static/app.css")) == "/static"
    assert route_template(routes, scope("/wp-login.php")) == UNMATCHED
