"""Connecting to Kafka and PostgreSQL, for every client: the shared librdkafka config (its
log through Python logging, deduplicated), a quick check that a service answers, and the
one-line error that says what to do when it does not.

Example:
    config = kafka_config(settings.kafka_bootstrap, **{"group.id": "o2c-reader"})
    require_kafka(settings.kafka_bootstrap)      # ServiceUnreachable within seconds
    with connect_database(settings.database_url) as conn: ...
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import psycopg
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

Service = Literal["Kafka", "PostgreSQL"]
T = TypeVar("T")

# Short enough that a command fails within 10 s of its start, long enough for a loaded
# broker to answer a metadata request.
KAFKA_CHECK_SECONDS = 6.0
DATABASE_CONNECT_SECONDS = 5
# While a service is away, a long-running process says so this often, and repeated
# librdkafka messages are logged this often with how many were suppressed.
NOTICE_SECONDS = 60.0

_VARIABLE: dict[Service, str] = {"Kafka": "O2C_KAFKA_BOOTSTRAP", "PostgreSQL": "O2C_DATABASE_URL"}
_UNREACHABLE_CODES = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
    }
)


class ServiceUnreachable(Exception):
    """Kafka or PostgreSQL does not answer: printed as one line with what to do."""

    def __init__(self, service: Service, address: str, reason: str) -> None:
        super().__init__(service, address, reason)
        self.service = service
        self.address = address
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"{self.service} is not reachable at {self.address} ({self.reason}): start the "
            f"local stack with `make up`, or set {_VARIABLE[self.service]} to where it runs"
        )


# --- librdkafka's log ------------------------------------------------------------------------

# The parts of a librdkafka message that change from one repetition to the next.
_VOLATILE = re.compile(r"\s*\(after \d+ms in state \w+[^)]*\)|\d+/\d+ brokers")


class LibrdkafkaLog:
    """What confluent-kafka's `logger` setting calls: librdkafka's messages go to a Python
    logger at most at `ceiling` (librdkafka retries what it calls an error; whether the
    application fails is ours to say), each distinct message at most once a minute."""

    def __init__(
        self, logger: logging.Logger, ceiling: int = logging.WARNING, window: float = NOTICE_SECONDS
    ) -> None:
        self.logger = logger
        self.ceiling = ceiling
        self.window = window
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], tuple[float, int]] = {}  # key -> (logged at, skipped)

    def log(self, level: int, msg: str, *args: Any) -> None:
        facility, client, text = (str(a) for a in (*args, "", "", "")[:3])
        key = (facility, _VOLATILE.sub("", text))
        now = time.monotonic()
        with self._lock:
            logged_at, skipped = self._last.get(key, (-self.window, 0))
            if now - logged_at < self.window:
                self._last[key] = (logged_at, skipped + 1)
                return
            self._last[key] = (now, 0)
        repeated = f" (and {skipped} more like it in {self.window:.0f}s)" if skipped else ""
        self.logger.log(min(level, self.ceiling), "%s [%s] %s%s", facility, client, text, repeated)


LIBRDKAFKA_LOG = LibrdkafkaLog(logging.getLogger("librdkafka"))


def kafka_config(bootstrap: str, **settings: Any) -> dict[str, Any]:
    """The config every client starts from; `settings` are librdkafka properties."""
    return {"bootstrap.servers": bootstrap, "logger": LIBRDKAFKA_LOG, **settings}


# --- Kafka -----------------------------------------------------------------------------------


def kafka_unreachable(exc: KafkaException) -> bool:
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and error.code() in _UNREACHABLE_CODES


def _reason(errors: list[KafkaError], fallback: str) -> str:
    """What librdkafka's first connection error says, without its broker prefix."""
    for error in errors:
        if error.code() not in (KafkaError._TRANSPORT, KafkaError._RESOLVE):
            continue
        text = _VOLATILE.sub("", error.str().split("/bootstrap: ", 1)[-1]).strip()
        if "Invalid response size" in text:
            return "something answered, but not as Kafka: a wrong port or security protocol?"
        return text.split("failed: ", 1)[-1]
    return fallback


def require_kafka(bootstrap: str, timeout: float = KAFKA_CHECK_SECONDS) -> Any:
    """The cluster's metadata, or ServiceUnreachable as soon as librdkafka finds every
    bootstrap server down (at once for a refused connection), else after `timeout`."""
    errors: list[KafkaError] = []
    # What this client's librdkafka says is in the exception; only --debug shows it.
    quiet = LibrdkafkaLog(logging.getLogger("librdkafka.check"), ceiling=logging.DEBUG)
    config: dict[str, Any] = kafka_config(bootstrap, logger=quiet)
    config["error_cb"] = errors.append
    client = AdminClient(config)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
        except KafkaException as exc:
            client.poll(0)  # serves error_cb
            down = any(e.code() == KafkaError._ALL_BROKERS_DOWN for e in errors)
            if down or time.monotonic() >= deadline:
                raise ServiceUnreachable(
                    "Kafka", bootstrap, _reason(errors, f"no answer within {timeout:.0f}s")
                ) from exc


# --- PostgreSQL ------------------------------------------------------------------------------


def database_address(conninfo: str) -> str:
    """host:port/database of a connection string, without the user or password."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return urlsplit(conninfo).hostname or "?"
    host = parts.get("host") or "localhost"
    return f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(" failed: ")[-1]


def connect_database(conninfo: str, **options: Any) -> psycopg.Connection[Any]:
    """psycopg.connect that gives up within seconds with ServiceUnreachable."""
    options.setdefault("connect_timeout", DATABASE_CONNECT_SECONDS)
    try:
        return psycopg.connect(conninfo, **options)
    except psycopg.OperationalError as exc:
        raise ServiceUnreachable(
            "PostgreSQL", database_address(conninfo), _first_line(exc)
        ) from exc


def unreachable(exc: BaseException, bootstrap: str, conninfo: str) -> ServiceUnreachable | None:
    """The one-line error for a failure that means a service went away, else None."""
    if isinstance(exc, ServiceUnreachable):
        return exc
    if isinstance(exc, KafkaException) and kafka_unreachable(exc):
        return ServiceUnreachable("Kafka", bootstrap, exc.args[0].str())
    if isinstance(exc, psycopg.OperationalError):
        return ServiceUnreachable("PostgreSQL", database_address(conninfo), _first_line(exc))
    from services.kafka_io import DeliveryFailed  # kafka_io builds its clients from here

    if isinstance(exc, DeliveryFailed):  # the broker went away while a command produced
        return ServiceUnreachable("Kafka", bootstrap, str(exc))
    return None


# --- waiting for a service -------------------------------------------------------------------


def wait_for(
    attempt: Callable[[], T],
    what: str,
    log: logging.Logger,
    *,
    bootstrap: str,
    conninfo: str,
    stopping: Callable[[], bool] = lambda: False,
    first_pause: float = 1.0,
    max_pause: float = 30.0,
) -> T | None:
    """Call `attempt` until no service is missing, pausing twice as long each time up to
    `max_pause`, and saying so once a minute; None if `stopping()` became true first.
    Any other failure is raised."""
    pause = first_pause
    since = noticed = None
    while not stopping():
        try:
            result = attempt()
        except Exception as exc:
            missing = unreachable(exc, bootstrap, conninfo)
            if missing is None:
                raise
            now = time.monotonic()
            since = now if since is None else since
            if noticed is None or now - noticed >= NOTICE_SECONDS:
                noticed = now
                log.warning(
                    "%s: waiting for %s (away %.0fs; retrying every %.0fs at most): %s",
                    what,
                    missing.service,
                    now - since,
                    max_pause,
                    missing,
                )
            resume = now + pause
            while time.monotonic() < resume and not stopping():
                time.sleep(0.2)
            pause = min(pause * 2, max_pause)
            continue
        if since is not None:
            log.info("%s: reachable again after %.0fs", what, time.monotonic() - since)
        return result
    return None
