"""CSRF tokens, the login rate limit and the security headers of every response.

The session itself is Starlette's SessionMiddleware: a cookie signed with O2C_WEB_SECRET
(itsdangerous), HttpOnly and SameSite=Lax. Each session holds a random CSRF token; every
form carries it in a hidden field and every htmx request in the X-CSRF-Token header, and
a state-changing request without the session's token is refused (403).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

# Scripts, styles and pictures come from the app itself; nothing may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's token, made on first use."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def csrf_ok(session: MutableMapping[str, Any], given: str | None) -> bool:
    expected = session.get(CSRF_FIELD)
    if not isinstance(expected, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class LoginLimiter:
    """At most `attempts` failed logins per client address and per user name within
    `window` seconds; a success does not clear the address's count (a guesser who knows
    one password must not gain more tries at others)."""

    def __init__(
        self,
        attempts: int = 5,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        found = self._failures.setdefault(key, deque())
        horizon = self.clock() - self.window
        while found and found[0] <= horizon:
            found.popleft()
        return found

    def allowed(self, address: str, name: str) -> bool:
        keys = (f"ip:{address}", f"user:{name.lower()}")
        return all(len(self._recent(k)) < self.attempts for k in keys)

    def failed(self, address: str, name: str) -> None:
        now = self.clock()
        for key in (f"ip:{address}", f"user:{name.lower()}"):
            self._recent(key).append(now)
        if len(self._failures) > 100_000:  # a flood of names: forget the idle ones
            self._failures = {k: v for k, v in self._failures.items() if self._recent(k)}

    def retry_after(self, address: str, name: str) -> int:
        oldest = [
            q[0]
            for q in (self._recent(f"ip:{address}"), self._recent(f"user:{name.lower()}"))
            if len(q) >= self.attempts
        ]
        return max(1, int(min(oldest) + self.window - self.clock()) + 1) if oldest else 0


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response, and no-store to every page (a page shows
    figures a shared browser's back button should not bring back after logout)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
