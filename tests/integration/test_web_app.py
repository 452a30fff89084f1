"""The workbench over HTTP (Starlette's test client) against the real PostgreSQL and Kafka:
who may do what, CSRF, the login limit, and the event each action publishes."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from starlette.testclient import TestClient

from projections.reports import Reports
from schemas import events as ev
from services.cli.reports import render
from services.web.app import create_app
from tests.conftest import Services
from tests.projection_support import catch_up
from tests.web_support import (
    PASSWORDS,
    Published,
    Seeded,
    catch_up_timeline,
    csrf_of,
    seed,
    settings_for,
)

pytestmark = pytest.mark.integration

SECRET = "a test secret of enough length"


@pytest.fixture
def seeded(services: Services, read_schema: str) -> Seeded:
    return seed(services, read_schema)


@pytest.fixture
def client(services: Services, read_schema: str, seeded: Seeded) -> Iterator[TestClient]:
    app = create_app(settings_for(services, read_schema), SECRET)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture
def published(services: Services) -> Iterator[Published]:
    watcher = Published(services)
    yield watcher
    watcher.close()


def login(client: TestClient, name: str, password: str) -> int:
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"csrf": token, "name": name, "password": password, "next": "/exceptions"},
        follow_redirects=False,
    )
    return int(response.status_code)


def as_role(client: TestClient, seeded: Seeded, role: str) -> str:
    assert login(client, seeded.users[role], PASSWORDS[role]) == 303
    return csrf_of(client.get("/exceptions").text)


def test_pages_ask_for_a_login_first(client: TestClient) -> None:
    for path in ("/", "/exceptions", "/customers", "/daily", "/daily.csv"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_a_wrong_password_is_refused_and_the_right_one_lets_in(
    client: TestClient, seeded: Seeded
) -> None:
    assert login(client, seeded.users["clerk"], "not the password") == 401
    assert client.get("/exceptions", follow_redirects=False).status_code == 303
    assert login(client, seeded.users["clerk"], PASSWORDS["clerk"]) == 303
    assert client.get("/exceptions", follow_redirects=False).status_code == 200


def test_a_disabled_user_is_out_at_the_next_request(
    client: TestClient, seeded: Seeded, services: Services, read_schema: str
) -> None:
    from services.web.users import Users

    as_role(client, seeded, "viewer")
    Users(services.database_url, read_schema).disable(seeded.users["viewer"])
    assert client.get("/exceptions", follow_redirects=False).status_code == 303
    assert login(client, seeded.users["viewer"], PASSWORDS["viewer"]) == 401


def test_logins_are_limited_after_five_failures(client: TestClient, seeded: Seeded) -> None:
    for _ in range(5):
        assert login(client, seeded.users["admin"], "guess") == 401
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login", data={"csrf": token, "name": seeded.users["admin"], "password": "guess"}
    )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    # Even the right password waits: the limit is on the name and the address.
    assert login(client, seeded.users["admin"], PASSWORDS["admin"]) == 429


def test_a_form_without_the_sessions_csrf_token_is_refused(
    client: TestClient, seeded: Seeded, published: Published
) -> None:
    token = as_role(client, seeded, "clerk")
    path = f"/exceptions/{seeded.overpaid}/resolve"
    assert client.post(path, data={"note": "no token"}).status_code == 403
    assert client.post(path, data={"note": "bad", "csrf": token + "x"}).status_code == 403
    login_without = client.post("/login", data={"name": "x", "password": "y"})
    assert login_without.status_code == 403
    about = seeded.overpaid
    assert published.collect(lambda e: getattr(e.data, "mismatch_id", None) == about, 1, 3) == []


def test_a_viewer_reads_but_cannot_resolve(
    client: TestClient, seeded: Seeded, published: Published
) -> None:
    token = as_role(client, seeded, "viewer")
    page = client.get(f"/exceptions/{seeded.overpaid}")
    assert page.status_code == 200
    assert 'id="resolve"' not in page.text
    response = client.post(
        f"/exceptions/{seeded.overpaid}/resolve", data={"csrf": token, "note": "mine"}
    )
    assert response.status_code == 403

    def about(e: object) -> bool:
        return getattr(getattr(e, "data", None), "mismatch_id", None) == seeded.overpaid

    assert published.collect(about, 1, 3) == []


def test_assigning_publishes_the_event_and_shows_pending_until_projected(
    client: TestClient,
    seeded: Seeded,
    published: Published,
    services: Services,
    read_schema: str,
) -> None:
    token = as_role(client, seeded, "clerk")
    clerk = seeded.users["clerk"]
    response = client.post(
        f"/exceptions/{seeded.overpaid}/assign", data={"csrf": token}, follow_redirects=False
    )
    assert response.status_code == 303
    (event,) = published.collect(lambda e: isinstance(e, ev.MismatchAssigned), 1)
    assert isinstance(event, ev.MismatchAssigned)
    assert event.data.mismatch_id == seeded.overpaid
    assert event.data.assignee == clerk
    assert event.data.by == clerk
    assert event.data.order_id == seeded.order  # the detection's key: the same partition
    assert 'id="pending"' in client.get(f"/exceptions/{seeded.overpaid}").text

    catch_up(services, read_schema, publish_alerts=False)
    page = client.get(f"/exceptions/{seeded.overpaid}").text
    assert 'id="pending"' not in page
    assert 'class="status assigned"' in page


def test_resolving_publishes_a_manual_resolution_with_the_note_and_the_user(
    client: TestClient,
    seeded: Seeded,
    published: Published,
    services: Services,
    read_schema: str,
) -> None:
    token = as_role(client, seeded, "clerk")
    client.post(
        f"/exceptions/{seeded.overpaid}/resolve",
        data={"csrf": token, "note": "refunded the 30.00"},
    )
    (event,) = published.collect(lambda e: isinstance(e, ev.MismatchResolved), 1)
    assert isinstance(event, ev.MismatchResolved)
    assert (event.data.mismatch_id, event.data.resolution) == (seeded.overpaid, "manual")
    assert (event.data.note, event.data.by) == ("refunded the 30.00", seeded.users["clerk"])
    assert event.data.reason is ev.ReasonCode.OVERPAID

    catch_up(services, read_schema, publish_alerts=False)
    assert 'class="status resolved"' in client.get(f"/exceptions/{seeded.overpaid}").text


def test_a_resolution_needs_a_note(client: TestClient, seeded: Seeded) -> None:
    token = as_role(client, seeded, "clerk")
    response = client.post(
        f"/exceptions/{seeded.overpaid}/resolve", data={"csrf": token, "note": "  "}
    )
    assert response.status_code == 200
    assert "needs a note" in response.text


def test_applying_a_suggestion_publishes_a_manual_application_and_the_resolution(
    client: TestClient, seeded: Seeded, published: Published
) -> None:
    token = as_role(client, seeded, "clerk")
    page = client.get(f"/exceptions/{seeded.ambiguous}").text
    assert seeded.twins[1] in page
    client.post(f"/exceptions/{seeded.ambiguous}/apply", data={"csrf": token, "suggestion": "1"})

    def ours(e: object) -> bool:
        data = getattr(e, "data", None)
        return getattr(data, "line_id", None) == seeded.line and not isinstance(
            e, ev.MismatchDetected
        )

    # Two topics (o2c.matches, o2c.mismatches): read back in either order.
    events = published.collect(ours, 2)
    [applied] = [e for e in events if isinstance(e, ev.PaymentApplied)]
    [resolved] = [e for e in events if isinstance(e, ev.MismatchResolved)]
    d = applied.data
    assert (d.order_id, d.amount, d.currency) == (seeded.twins[1], Decimal("250.00"), "CNY")
    assert (d.method, d.by) == ("manual", seeded.users["clerk"])
    assert resolved.data.mismatch_id == seeded.ambiguous
    assert resolved.data.by == seeded.users["clerk"]


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    response = client.get("/login")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()


def test_the_daily_csv_is_what_o2c_report_daily_prints(
    client: TestClient, seeded: Seeded, services: Services, read_schema: str
) -> None:
    as_role(client, seeded, "viewer")
    reports = Reports(services.database_url, read_schema)
    try:
        day = reports.business_today()
        expected = reports.daily(day)
    finally:
        reports.close()
    response = client.get(f"/daily.csv?day={day}")
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text == render(expected.title, expected.headers, expected.rows, "csv") + "\n"


def test_chinese_labels_by_accept_language_and_by_the_switch(
    client: TestClient, seeded: Seeded
) -> None:
    as_role(client, seeded, "viewer")
    assert (
        "异常队列" in client.get("/exceptions", headers={"accept-language": "zh-CN,zh;q=0.9"}).text
    )
    assert "异常队列" not in client.get("/exceptions", headers={"accept-language": "en"}).text
    client.get("/lang/zh?next=/exceptions")
    assert "异常队列" in client.get("/exceptions", headers={"accept-language": "en"}).text


def test_every_page_renders_for_a_viewer(client: TestClient, seeded: Seeded) -> None:
    as_role(client, seeded, "viewer")
    for path in (
        "/",
        "/?by=channel",
        "/exceptions",
        "/exceptions?reason=OVERPAID&status=open&sort=largest",
        f"/exceptions/{seeded.ambiguous}",
        "/customers",
        f"/customers/{seeded.customer}",
        "/daily",
        "/search",
    ):
        assert client.get(path).status_code == 200, path


def test_search_opens_the_timeline_and_the_balance_of_an_id_or_lists_a_prefix(
    client: TestClient, seeded: Seeded, services: Services, read_schema: str
) -> None:
    catch_up_timeline(services, read_schema)
    as_role(client, seeded, "viewer")
    page = client.get(f"/search?q={seeded.order}").text
    assert 'id="chosen"' in page
    assert "mismatch detected: difference 30.00 CNY, reason OVERPAID" in page
    assert 'id="open-balance"' in page  # an order: its current balance too
    prefix = seeded.twins[0][:4]  # "ORD-": many ids
    listing = client.get(f"/search?q={prefix}").text
    assert 'id="chosen"' not in listing
    assert client.get("/search?q=no-such-id-at-all").status_code == 200


def test_only_an_admin_manages_users(
    client: TestClient, seeded: Seeded, services: Services, read_schema: str
) -> None:
    from services.web.users import Users

    token = as_role(client, seeded, "clerk")
    assert client.get("/users").status_code == 403
    refused = client.post(
        "/users/add", data={"csrf": token, "name": "eve", "role": "admin", "password": "x" * 12}
    )
    assert refused.status_code == 403
    client.post("/logout", data={"csrf": token})

    token = as_role(client, seeded, "admin")
    assert client.get("/users").status_code == 200
    name = f"new-{seeded.order[-6:]}"
    client.post(
        "/users/add", data={"csrf": token, "name": name, "role": "viewer", "password": "y" * 12}
    )
    client.post("/users/disable", data={"csrf": token, "name": seeded.users["clerk"]})
    users = {u.name: u for u in Users(services.database_url, read_schema).list()}
    assert "eve" not in users
    assert (users[name].role, users[name].disabled) == ("viewer", False)
    assert users[seeded.users["clerk"]].disabled


def test_a_queue_with_a_pending_row_polls_until_it_is_applied(
    client: TestClient, seeded: Seeded, services: Services, read_schema: str
) -> None:
    token = as_role(client, seeded, "clerk")
    client.post(f"/exceptions/{seeded.overpaid}/assign", data={"csrf": token})
    rows = client.get(f"/exceptions?customer={seeded.customer}", headers={"hx-request": "true"})
    assert 'id="queue-poll"' in rows.text
    assert "<html" not in rows.text  # htmx gets the rows alone
    catch_up(services, read_schema, publish_alerts=False)
    catch_up_timeline(services, read_schema)
    after = client.get(f"/exceptions?customer={seeded.customer}", headers={"hx-request": "true"})
    assert 'id="queue-poll"' not in after.text
    assert 'class="status assigned"' in after.text


def _sample(name: str, labels: dict[str, str]) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_workbench_whose_database_goes_away_answers_503_and_serves_again_when_it_is_back(
    services: Services, read_schema: str, seeded: Seeded
) -> None:
    import socket

    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from tests.fault_support import FlakyProxy

    settings = settings_for(services, read_schema)
    web_url = settings.role_database_url("web")
    target = int(conninfo_to_dict(web_url).get("port") or 5432)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    through_proxy = settings.model_copy(
        update={"web_database_url": make_conninfo(web_url, host="127.0.0.1", port=str(port))}
    )
    route = {"route": "/exceptions/{mismatch_id}", "method": "GET"}
    unavailable = {"service": "PostgreSQL"}
    proxy = FlakyProxy(port, target, delay=0, drop_every=3600)
    try:
        with TestClient(create_app(through_proxy, SECRET), base_url="http://127.0.0.1") as client:
            assert login(client, seeded.users["viewer"], PASSWORDS["viewer"]) == 303
            served = _sample("o2c_web_requests_total", {**route, "status": "200"})
            assert client.get(f"/exceptions/{seeded.overpaid}").status_code == 200
            assert _sample("o2c_web_requests_total", {**route, "status": "200"}) == served + 1

            proxy.close()  # PostgreSQL is away: connections are refused
            refused = _sample("o2c_web_unavailable_total", unavailable)
            away = client.get(f"/exceptions/{seeded.overpaid}")
            assert away.status_code == 503
            assert away.headers["retry-after"] == "5"
            assert "PostgreSQL is not answering" in away.text
            assert _sample("o2c_web_unavailable_total", unavailable) == refused + 1
            assert _sample("o2c_web_requests_total", {**route, "status": "503"}) >= 1
            assert client.get("/login").status_code == 200  # reads nothing: still up

            proxy = FlakyProxy(port, target, delay=0, drop_every=3600)  # back, same address
            back = client.get(f"/exceptions/{seeded.overpaid}")
            assert back.status_code == 200, back.text
            assert seeded.overpaid in back.text
    finally:
        proxy.close()
