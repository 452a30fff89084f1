"""The workbench in a real browser: Debian's headless Chromium driven by Playwright, against
the real stack (the session worker, a projection running beside the app, Kafka and
PostgreSQL). A screenshot of every page it visits goes to tests/artifacts/browser/."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from projections.runner import ProjectionRunner, unique_group
from projections.timeline import TimelineRunner
from services.web.app import create_app
from tests.conftest import RunningWorker, Services, _free_port
from tests.factories import T0, event, order_placed, unique
from tests.projection_support import publish, query
from tests.web_support import PASSWORDS, Seeded, seed, settings_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = Path(os.environ.get("O2C_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "browser"

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@dataclass(frozen=True)
class Site:
    url: str
    seeded: Seeded
    schema: str


@pytest.fixture
def site(services: Services, read_schema: str, worker: RunningWorker) -> Iterator[Site]:
    seeded = seed(services, read_schema)
    app = create_app(settings_for(services, read_schema), "a browser test secret, long")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    projection = ProjectionRunner(
        services.kafka_bootstrap,
        services.database_url,
        read_schema,
        group_id=unique_group("browser-projection"),
        publish_alerts=False,
    )
    timeline = TimelineRunner(
        services.kafka_bootstrap,
        services.database_url,
        read_schema,
        group_id=unique_group("browser-timeline"),
    )
    projecting = [
        threading.Thread(target=runner.run, daemon=True) for runner in (projection, timeline)
    ]
    for thread in projecting:
        thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        yield Site(f"http://127.0.0.1:{port}", seeded, read_schema)
    finally:
        server.should_exit = True
        serving.join(10)
        for runner, thread in zip((projection, timeline), projecting, strict=True):
            runner.stopping = True
            thread.join(30)
            runner.close()


@pytest.fixture
def page(site: Site) -> Iterator[Page]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        tab = browser.new_page(viewport={"width": 1300, "height": 900}, locale="en-GB")
        tab.set_default_timeout(30_000)
        yield tab
        browser.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page: Page, site: Site, role: str, password: str | None = None) -> None:
    page.goto(f"{site.url}/login")
    page.fill("input[name=name]", site.seeded.users[role])
    page.fill("input[name=password]", password or PASSWORDS[role])
    page.click("form.login button[type=submit]")


def test_a_wrong_password_is_refused(page: Page, site: Site) -> None:
    log_in(page, site, "clerk", "wrong password")
    expect(page.locator(".error")).to_have_text("Wrong user name or password.")
    shot(page, "login-refused")
    log_in(page, site, "clerk")
    expect(page.locator("h1")).to_have_text("Overview")


def test_a_viewer_reads_every_page_but_cannot_resolve(page: Page, site: Site) -> None:
    log_in(page, site, "viewer")
    page.wait_for_url(f"{site.url}/")
    page.wait_for_selector("#chart-dso")
    shot(page, "overview")
    page.goto(f"{site.url}/exceptions")
    shot(page, "queue")
    page.goto(f"{site.url}/exceptions/{site.seeded.overpaid}")
    expect(page.locator(".hint")).to_contain_text("You may read")
    assert page.locator("#resolve").count() == 0
    shot(page, "exception-viewer")
    for path, name in (
        ("/customers", "customers"),
        (f"/customers/{site.seeded.customer}", "customer"),
        ("/daily", "daily"),
    ):
        page.goto(site.url + path)
        assert page.locator("h1").count() == 1
        shot(page, name)


def test_a_clerk_assigns_and_resolves_and_sees_the_status_change(page: Page, site: Site) -> None:
    log_in(page, site, "clerk")
    page.goto(f"{site.url}/exceptions/{site.seeded.overpaid}")
    page.click("#assign-me")
    shot(page, "exception-pending")
    # The page polls until the projection has applied the assignment.
    expect(page.locator("#exception-status")).to_have_text("assigned")
    expect(page.locator("#pending")).to_have_count(0)
    page.fill("input[name=note]", "refunded the 30.00 overpaid")
    page.click("#resolve")
    expect(page.locator("#exception-status")).to_have_text("resolved")
    shot(page, "exception-resolved")


def test_applying_a_suggestion_matches_the_order_through_the_pipeline(
    page: Page, site: Site, services: Services
) -> None:
    customer = unique("CUST")
    twins = (unique("ORD"), unique("ORD"))
    line, mismatch = unique("BL"), unique("MM")
    publish(
        services,
        [order_placed(o, "88.00", customer_id=customer, payment_terms_days=30) for o in twins],
    )
    deadline = time.monotonic() + 60
    while len(_open(services, site, twins)) < 2:
        assert time.monotonic() < deadline, "the worker did not report the two open orders"
        time.sleep(0.5)
    detected = T0 + timedelta(hours=3)
    # As the suspense processor reports a line that could pay either order.
    publish(
        services,
        [
            event(
                "mismatch.detected",
                {
                    "mismatch_id": mismatch,
                    "reason": "AMBIGUOUS_BANK_LINE",
                    "severity": "medium",
                    "currency": "CNY",
                    "actual": "88.00",
                    "line_id": line,
                    "customer_id": customer,
                    "detected_at": detected.isoformat(),
                    "suggestions": [
                        {
                            "order_ids": [o],
                            "amount": "88.00",
                            "method": "exact_amount",
                            "confidence": "0.5",
                        }
                        for o in twins
                    ],
                },
                at=detected,
            )
        ],
    )
    log_in(page, site, "clerk")
    page.goto(f"{site.url}/exceptions?reason=AMBIGUOUS_BANK_LINE&customer={customer}")
    page.click(f"text={mismatch[:8]}")
    page.locator("button.apply").nth(1).click()
    expect(page.locator("#exception-status")).to_have_text("resolved")
    shot(page, "suggestion-applied")
    deadline = time.monotonic() + 60
    while not query(
        services, site.schema, "SELECT 1 FROM order_matches WHERE order_id = %s", (twins[1],)
    ):
        assert time.monotonic() < deadline, "the order was not matched"
        time.sleep(0.5)
    assert list(_open(services, site, twins)) == [twins[0]]


def _open(services: Services, site: Site, orders: tuple[str, ...]) -> list[str]:
    rows = query(
        services,
        site.schema,
        "SELECT order_id FROM open_items WHERE order_id = ANY(%s) ORDER BY order_id",
        (list(orders),),
    )
    return sorted(str(r[0]) for r in rows)


def test_switching_to_chinese_shows_chinese_labels(page: Page, site: Site) -> None:
    log_in(page, site, "viewer")
    page.wait_for_url(f"{site.url}/")
    page.click("text=中文")
    expect(page.locator("h1")).to_have_text("概览")
    expect(page.locator("header nav")).to_contain_text("异常队列")
    shot(page, "overview-zh")
    page.goto(f"{site.url}/exceptions")
    expect(page.locator("h1")).to_have_text("异常队列")
    shot(page, "queue-zh")


def teardown_module() -> None:
    # Leave the screenshots, but no empty folder when nothing ran.
    if ARTIFACTS.exists() and not any(ARTIFACTS.iterdir()):
        shutil.rmtree(ARTIFACTS)
