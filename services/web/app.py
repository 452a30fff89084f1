"""The finance workbench: Starlette routes over the read models, Jinja2 pages, htmx.

It reads PostgreSQL and writes only by publishing events (services/manual_actions.py, the
same code as `o2c exceptions …`); a page shows an action as pending until the projection
has applied the event it published. `create_app` takes the settings, the session secret,
and optionally the publisher, so that tests can watch what an action sends.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlencode

import psycopg
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from schemas.base import CloudEvent
from services import manual_actions
from services.cli.reports import render
from services.connections import ServiceUnreachable
from services.display_masking import DISPLAY_FILTERS
from services.kafka_io import DeliveryFailed, EventProducer
from services.settings import Settings
from services.web import i18n
from services.web.metrics import UNAVAILABLE, RequestMetrics
from services.web.queries import SORTS, QueueFilter, ReadModels
from services.web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    LoginLimiter,
    SecurityHeaders,
    csrf_ok,
    csrf_token,
)
from services.web.users import ROLES, Role, User, UserError, Users

HERE = Path(__file__).parent
Publisher = Callable[[Sequence[CloudEvent]], None]
Handler = Callable[[Request], Awaitable[Response]]
SESSION_SECONDS = 8 * 3600
RETRY_SECONDS = 5
log = logging.getLogger(__name__)


def kafka_publisher(bootstrap: str) -> Publisher:
    producer = EventProducer(bootstrap)

    def publish(events: Sequence[CloudEvent]) -> None:
        manual_actions.publish(producer, events)

    return publish


class Workbench:
    def __init__(self, settings: Settings, publish: Publisher) -> None:
        self.settings = settings
        self.publish = publish
        # The web role: it reads the views and the tables it shows, writes only its users
        # and its actions (docs/operations.md, "Database roles").
        conninfo = settings.role_database_url("web")
        self.read = ReadModels(conninfo, settings.read_schema)
        self.users = Users(conninfo, settings.read_schema)
        self.limiter = LoginLimiter()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["money"] = i18n.format_amount
        self.templates.env.filters["rate"] = i18n.format_rate
        self.templates.env.filters["when"] = _when
        # `account` and `masked`: docs/operations.md, "Personal and card data".
        self.templates.env.filters.update(DISPLAY_FILTERS)

    # --- plumbing -------------------------------------------------------------------------

    def user(self, request: Request) -> User | None:
        name = request.session.get("user")
        if not isinstance(name, str):
            return None
        found = self.users.get(name)  # every request: a disabled user is out at once
        if found is None or found.disabled:
            request.session.pop("user", None)
            return None
        return found

    def page(
        self, request: Request, template: str, user: User | None, status: int = 200, **context: Any
    ) -> Response:
        language = i18n.negotiate(
            request.cookies.get("lang"), request.headers.get("accept-language")
        )
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "user": user,
                "lang": language,
                "t": lambda key: i18n.translate(key, language),
                "csrf": csrf_token(request.session),
                "csrf_field": CSRF_FIELD,
                "path": request.url.path,
                **context,
            },
            status_code=status,
        )

    async def form(self, request: Request) -> FormData:
        """The posted form, once its CSRF token matched the session's (else 403)."""
        form = await request.form()
        given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        if not csrf_ok(request.session, given if isinstance(given, str) else None):
            raise HTTPException(403, "CSRF token missing or wrong")
        return form

    # --- login ----------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        return self.page(request, "login.html", None, error=None)

    async def login(self, request: Request) -> Response:
        form = await self.form(request)
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        address = request.client.host if request.client else "?"
        if not self.limiter.allowed(address, name):
            wait = self.limiter.retry_after(address, name)
            response = self.page(request, "login.html", None, 429, error="login_limited")
            response.headers["retry-after"] = str(wait)
            return response
        user = self.users.authenticate(name, password)
        if user is None:
            self.limiter.failed(address, name)
            return self.page(request, "login.html", None, 401, error="login_failed")
        request.session.clear()  # a new session (and CSRF token) for the logged-in user
        request.session["user"] = user.name
        target = str(form.get("next", "/"))
        return RedirectResponse(target if _local(target) else "/", 303)

    async def logout(self, request: Request) -> Response:
        await self.form(request)
        request.session.clear()
        return RedirectResponse("/login", 303)

    async def language(self, request: Request) -> Response:
        code = request.path_params["code"]
        back = request.query_params.get("next", "/")
        response = RedirectResponse(back if _local(back) else "/", 303)
        if code in i18n.LANGUAGES:
            response.set_cookie("lang", code, max_age=365 * 86400, samesite="lax", httponly=True)
        return response

    # --- pages ----------------------------------------------------------------------------

    def as_of(self, request: Request) -> date:
        text = request.query_params.get("day")
        if text:
            try:
                return date.fromisoformat(text)
            except ValueError:
                raise HTTPException(400, f"not a date: {text!r}") from None
        return self.read.business_today()

    async def overview(self, request: Request, user: User) -> Response:
        day = self.as_of(request)
        by = request.query_params.get("by", "customer")
        if by not in ("customer", "channel", "region"):
            by = "customer"
        # The 20 largest groups: a bar per customer of thousands would be noise.
        ageing = self.read.ageing(
            day, cast(Literal["customer", "channel", "region"], by), largest=20
        )
        return self.page(
            request,
            "overview.html",
            user,
            day=day,
            by=by,
            totals=self.read.day_totals(day),
            open_by_reason=self.read.open_by_reason(),
            charts={
                "raised": _jsonable(self.read.raised_per_day(day)),
                "dso": _jsonable(self.read.dso(day)),
                "ageing": {
                    "headers": list(ageing.headers),
                    "rows": [[_plain(c) for c in row] for row in ageing.rows],
                },
            },
            exposures=self.read.largest_exposures(),
        )

    def queue_filter(self, request: Request) -> QueueFilter:
        q = request.query_params
        sort = q.get("sort", "newest")
        min_age = q.get("min_age", "")
        return QueueFilter(
            reason=q.get("reason") or None,
            status=q.get("status") or None,
            owner=q.get("owner") or None,
            currency=q.get("currency") or None,
            customer=q.get("customer") or None,
            min_age=int(min_age) if min_age.isdigit() else None,
            sort=cast(Any, sort) if sort in SORTS else "newest",
        )

    async def exceptions(self, request: Request, user: User) -> Response:
        filters = self.queue_filter(request)
        page = self.read.queue(filters, request.query_params.get("after"))
        query = {k: v for k, v in request.query_params.items() if v and k != "after"}
        template = "queue_rows.html" if request.headers.get("hx-request") else "exceptions.html"
        return self.page(
            request,
            template,
            user,
            page=page,
            filters=filters,
            choices=self.read.choices(),
            sorts=SORTS,
            query=query,
            next_url=(
                f"/exceptions?{urlencode({**query, 'after': page.next_cursor})}"
                if page.next_cursor
                else None
            ),
        )

    def found(self, request: Request) -> dict[str, Any]:
        found = self.read.exception(request.path_params["mismatch_id"])
        if found is None:
            raise HTTPException(404, "no such exception")
        return found

    async def exception(self, request: Request, user: User) -> Response:
        found = self.found(request)
        subject = _subject(found)
        template = (
            "exception_status.html" if request.headers.get("hx-request") else "exception.html"
        )
        return self.page(
            request,
            template,
            user,
            e=found,
            history=self.read.history(found["mismatch_id"]),
            timeline_of=subject,
            events=self.read.timeline(subject) if subject else [],
            error=request.query_params.get("error"),
        )

    async def act(self, request: Request, user: User) -> Response:
        form = await self.form(request)
        found = self.found(request)
        action = request.path_params["action"]
        now = datetime.now(UTC)
        source = self.settings.source
        try:
            if action == "assign":
                assignee = str(form.get("assignee") or user.name).strip()
                note = str(form.get("note") or "").strip() or None
                events: list[CloudEvent] = [
                    manual_actions.assignment(
                        found, assignee, by=user.name, source=source, now=now, note=note
                    )
                ]
            elif action == "resolve":
                events = [
                    manual_actions.resolution(
                        found, str(form.get("note", "")), by=user.name, source=source, now=now
                    )
                ]
            elif action == "apply":
                index = str(form.get("suggestion", ""))
                suggestions = found["suggestions"]
                if not index.isdigit() or int(index) >= len(suggestions):
                    raise manual_actions.ActionRefused("no such suggestion")
                chosen = suggestions[int(index)]
                events = manual_actions.suggestion_applied(
                    found,
                    chosen,
                    self.read.open_amounts(chosen.order_ids),
                    by=user.name,
                    source=source,
                    now=now,
                )
            else:
                raise HTTPException(404, "no such action")
        except (manual_actions.ActionRefused, ValueError) as exc:
            return RedirectResponse(
                f"/exceptions/{found['mismatch_id']}?{urlencode({'error': str(exc)})}", 303
            )
        self.publish(events)
        # The mismatch event (last) is what the projection will apply; until then, pending.
        self.read.record_action(events[-1].id, found["mismatch_id"], action, user.name)
        return RedirectResponse(f"/exceptions/{found['mismatch_id']}", 303)

    async def search(self, request: Request, user: User) -> Response:
        text = request.query_params.get("q", "").strip()
        kind = request.query_params.get("kind") or None
        found = self.read.search(text) if text else []
        exact = [r for r in found if r["ref_id"] == text and kind in (None, r["ref_kind"])]
        chosen = exact[0] if len(exact) == 1 else (found[0] if len(found) == 1 else None)
        events = self.read.timeline(chosen["ref_id"], chosen["ref_kind"]) if chosen else []
        balance = (
            self.read.balance(chosen["ref_id"])
            if chosen and chosen["ref_kind"] == "order"
            else None
        )
        return self.page(
            request,
            "search.html",
            user,
            q=text,
            found=found,
            chosen=chosen,
            events=events,
            balance=balance,
        )

    async def users_page(self, request: Request, user: User) -> Response:
        return self.page(
            request,
            "users.html",
            user,
            users=self.users.list(),
            roles=ROLES,
            error=request.query_params.get("error"),
        )

    async def users_change(self, request: Request, user: User) -> Response:
        form = await self.form(request)
        name = str(form.get("name", "")).strip()
        try:
            if request.path_params["action"] == "add":
                self.users.add(name, str(form.get("role", "")), str(form.get("password", "")))
            elif request.path_params["action"] == "disable":
                if name == user.name:
                    raise UserError("you cannot disable yourself")
                self.users.disable(name)
            else:
                raise HTTPException(404, "no such action")
        except UserError as exc:
            return RedirectResponse(f"/users?{urlencode({'error': str(exc)})}", 303)
        return RedirectResponse("/users", 303)

    async def customers(self, request: Request, user: User) -> Response:
        return self.page(request, "customers.html", user, rows=self.read.customers())

    async def customer(self, request: Request, user: User) -> Response:
        customer_id = request.path_params["customer_id"]
        exposure, items = self.read.customer(customer_id)
        if not exposure and not items:
            raise HTTPException(404, "no such customer")
        day = self.read.business_today()
        ageing = self.read.ageing(day, "customer")
        rows = [r for r in ageing.rows if r[0] == customer_id]
        return self.page(
            request,
            "customer.html",
            user,
            customer_id=customer_id,
            exposure=exposure,
            items=items,
            day=day,
            ageing_headers=ageing.headers[1:],
            ageing_rows=[r[1:] for r in rows],
        )

    async def daily(self, request: Request, user: User) -> Response:
        day = self.as_of(request)
        report = self.read.daily(day)
        if request.url.path.endswith(".csv"):
            body = render(report.title, report.headers, report.rows, "csv") + "\n"
            return Response(
                body,
                media_type="text/csv; charset=utf-8",
                headers={"content-disposition": f'attachment; filename="daily-{day}.csv"'},
            )
        return self.page(request, "daily.html", user, day=day, report=report)


def _subject(found: dict[str, Any]) -> str | None:
    """What the mismatch is about: its order, else its payout, bank line or payment."""
    for key in ("order_id", "payout_id", "line_id", "payment_id"):
        if found.get(key):
            return str(found[key])
    return None


def _local(target: str) -> bool:
    """Only a path of this site: never an open redirect to another host."""
    return target.startswith("/") and not target.startswith("//") and "\\" not in target


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)


def _plain(value: Any) -> Any:
    """JSON for the charts: amounts as decimal strings (Chart.js parses them), never floats."""
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in rows]


def create_app(settings: Settings, secret: str, publish: Publisher | None = None) -> Starlette:
    bench = Workbench(settings, publish or kafka_publisher(settings.kafka_bootstrap))

    def signed_in(needed: Role, handler: Callable[[Request, User], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            user = bench.user(request)
            if user is None:
                if request.method == "GET":
                    return RedirectResponse(f"/login?{urlencode({'next': request.url.path})}", 303)
                raise HTTPException(401, "log in first")
            if not user.may(needed):
                return bench.page(request, "error.html", user, 403, message="forbidden")
            return await handler(request, user)

        return endpoint

    routes = [
        Route("/login", bench.login_page, methods=["GET"]),
        Route("/login", bench.login, methods=["POST"]),
        Route("/logout", bench.logout, methods=["POST"]),
        Route("/lang/{code}", bench.language, methods=["GET"]),
        Route("/", signed_in("viewer", bench.overview), methods=["GET"]),
        Route("/exceptions", signed_in("viewer", bench.exceptions), methods=["GET"]),
        Route("/exceptions/{mismatch_id}", signed_in("viewer", bench.exception), methods=["GET"]),
        Route(
            "/exceptions/{mismatch_id}/{action}",
            signed_in("clerk", bench.act),
            methods=["POST"],
        ),
        Route("/search", signed_in("viewer", bench.search), methods=["GET"]),
        Route("/users", signed_in("admin", bench.users_page), methods=["GET"]),
        Route("/users/{action}", signed_in("admin", bench.users_change), methods=["POST"]),
        Route("/customers", signed_in("viewer", bench.customers), methods=["GET"]),
        Route("/customers/{customer_id}", signed_in("viewer", bench.customer), methods=["GET"]),
        Route("/daily", signed_in("viewer", bench.daily), methods=["GET"]),
        Route("/daily.csv", signed_in("viewer", bench.daily), methods=["GET"]),
        Route("/favicon.ico", lambda _request: Response(status_code=204), methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    async def unavailable(request: Request, exc: Exception) -> Response:
        # PostgreSQL or Kafka went away after start-up: say so and when to retry, rather
        # than a bare 500; the page needs neither (no user lookup, nothing read).
        if isinstance(exc, ServiceUnreachable):
            service = exc.service
        else:
            service = "Kafka" if isinstance(exc, DeliveryFailed) else "PostgreSQL"
        UNAVAILABLE.labels(service).inc()
        log.warning("%s %s answered 503: %s", request.method, request.url.path, exc)
        key = "kafka_unavailable" if service == "Kafka" else "database_unavailable"
        response = bench.page(request, "error.html", None, 503, message=key)
        response.headers["retry-after"] = str(RETRY_SECONDS)
        return response

    return Starlette(
        routes=routes,
        exception_handlers={
            ServiceUnreachable: unavailable,
            psycopg.OperationalError: unavailable,
            DeliveryFailed: unavailable,
        },
        middleware=[
            Middleware(RequestMetrics, routes=routes),
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie="o2c_session",
                max_age=SESSION_SECONDS,
                same_site="lax",
                https_only=False,  # 127.0.0.1 by default; behind TLS, the proxy sets Secure
            ),
        ],
    )
