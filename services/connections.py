"""Connecting to Kafka and PostgreSQL, for every client: the shared librdkafka config (its
log through Python logging, deduplicated), a quick check that a service answers, and the
one-line error that says what to do when it does not.

Every Kafka client's config comes from `kafka_config`, which adds the security settings
(O2C_KAFKA_SECURITY_PROTOCOL and the rest) of `get_settings()` unless given others.

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

from services.database_roles import login_refused
from services.settings import Settings, get_settings

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


_AUTHORIZATION_CODES = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    }
)
_CREDENTIALS_FIX = (
    "set O2C_KAFKA_USERNAME and O2C_KAFKA_PASSWORD (or O2C_KAFKA_PASSWORD_FILE) to a user the "
    "broker knows (the secured local stack: `deploy/local/stack env`)"
)


class ServiceUnreachable(Exception):
    """Kafka or PostgreSQL does not answer: printed as one line with what to do."""

    def __init__(self, service: Service, address: str, reason: str) -> None:
        super().__init__(service, address, reason)
        self.service = service
        self.address = address
        self.reason = reason

    def __str__(self) -> str:
        # The server answered and refused who we are: nothing is down, `make up` won't help.
        if self.service == "PostgreSQL" and login_refused(self.reason):
            return (
                f"PostgreSQL at {self.address} refused the login ({self.reason}): "
                "`o2c db migrate` creates each process's login; else set that process's URL "
                "(O2C_DATABASE_URL, or O2C_PROJECTOR_/O2C_READER_/O2C_WEB_DATABASE_URL) to a "
                "user and password the server knows"
            )
        return (
            f"{self.service} is not reachable at {self.address} ({self.reason}): start the "
            f"local stack with `make up`, or set {_VARIABLE[self.service]} to where it runs"
        )


class KafkaRefused(ServiceUnreachable):
    """The broker answers but will not have us: TLS, credentials, or an ACL. Printed as
    one line like ServiceUnreachable (exit status 2), but not waited for: retrying with the
    same settings cannot help."""

    def __init__(self, address: str, reason: str, fix: str, *, certain: bool = True) -> None:
        super().__init__("Kafka", address, reason)
        self.fix = fix
        # False when it is our reading of a hang-up, which a broker going away or a
        # flaky network can cause too: a long-running process then waits, as for a
        # service that is away.
        self.certain = certain

    def __str__(self) -> str:
        return f"Kafka at {self.address} {self.reason}: {self.fix}"


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


def kafka_security(settings: Settings) -> dict[str, str]:
    """librdkafka's security properties for `settings`: none for PLAINTEXT, so that a
    plaintext client's config is exactly what it was before there was a choice."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    config: dict[str, str] = {"security.protocol": protocol}
    if settings.kafka_ca_file is not None:
        if not settings.kafka_ca_file.is_file():  # else librdkafka's BIO error, a traceback
            raise KafkaRefused(
                settings.kafka_bootstrap,
                f"was not asked: O2C_KAFKA_CA_FILE names {settings.kafka_ca_file}, no file",
                "set O2C_KAFKA_CA_FILE to the PEM file of the CA that signed the broker's "
                "certificate (the secured local stack: `deploy/local/stack env`)",
            )
        config["ssl.ca.location"] = str(settings.kafka_ca_file)
    if protocol == "SASL_SSL":
        if not settings.kafka_username or settings.kafka_password is None:
            raise KafkaRefused(
                settings.kafka_bootstrap,
                "was not asked: O2C_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs a user",
                _CREDENTIALS_FIX,
            )
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_username
        config["sasl.password"] = settings.kafka_password.get_secret_value()
    return config


def kafka_config(bootstrap: str, **settings: Any) -> dict[str, Any]:
    """The config every client starts from: the process's security settings, then
    `settings`, librdkafka properties."""
    return client_config(bootstrap, get_settings(), settings)


def client_config(
    bootstrap: str, security: Settings, settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """kafka_config with the security settings of `security`: a test's own user."""
    return {
        "bootstrap.servers": bootstrap,
        "logger": LIBRDKAFKA_LOG,
        **kafka_security(security),
        **(settings or {}),
    }


# --- Kafka -----------------------------------------------------------------------------------


def kafka_unreachable(exc: KafkaException) -> bool:
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and error.code() in _UNREACHABLE_CODES


def kafka_refusal(
    error: KafkaError, bootstrap: str, security: Settings | None = None, topic: str | None = None
) -> KafkaRefused | None:
    """What a broker's refusal means, as one line with what to do; None for any other error."""
    settings = security or get_settings()
    code, text = error.code(), _VOLATILE.sub("", error.str()).strip()
    text = text.split("/bootstrap: ", 1)[-1]
    if code == KafkaError._AUTHENTICATION:  # librdkafka's text says no more than this
        return KafkaRefused(
            bootstrap,
            f"refused our credentials (SASL authentication failed for user "
            f"{settings.kafka_username!r}, {settings.kafka_sasl_mechanism})",
            _CREDENTIALS_FIX,
        )
    if code == KafkaError._SSL:
        return KafkaRefused(
            bootstrap,
            f"failed the TLS handshake ({text.split('failed: ', 1)[-1]})",
            "set O2C_KAFKA_CA_FILE to the CA that signed the broker's certificate, and "
            "O2C_KAFKA_SECURITY_PROTOCOL to what its listener expects (SSL or SASL_SSL)",
        )
    if code in _AUTHORIZATION_CODES:
        user = settings.kafka_username or "ANONYMOUS"
        return KafkaRefused(
            bootstrap,
            f"refused user {user!r}{f' writing {topic}' if topic else ''} ({error.name()}: {text})",
            "run this process as the user meant for it, or grant that user access "
            "(docs/operations.md, Running secured)",
        )
    return None


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


class _Noting(LibrdkafkaLog):
    """A LibrdkafkaLog that also keeps the texts, to tell why a broker hung up on us."""

    def __init__(self, logger: logging.Logger, ceiling: int) -> None:
        super().__init__(logger, ceiling)
        self.texts: list[str] = []

    def log(self, level: int, msg: str, *args: Any) -> None:
        self.texts.append(str(args[2]) if len(args) > 2 else "")
        super().log(level, msg, *args)


def _hung_up(texts: list[str], bootstrap: str, settings: Settings) -> KafkaRefused | None:
    """A broker that takes the connection and closes it before answering the first
    request expects what we did not send: TLS from a plaintext client, SASL from a
    TLS-only one."""
    closed = [t for t in texts if "closed by peer" in t]
    if not closed or any("Connection refused" in t for t in texts):
        return None
    protocol = settings.kafka_security_protocol
    expects = {"PLAINTEXT": "TLS (SSL or SASL_SSL)", "SSL": "SASL authentication (SASL_SSL)"}
    return KafkaRefused(
        bootstrap,
        f"hung up on our {protocol} connection before answering: its listener probably "
        f"expects {expects.get(protocol, 'another security protocol or mechanism')}",
        "set O2C_KAFKA_SECURITY_PROTOCOL, O2C_KAFKA_CA_FILE and the credentials as the broker "
        "expects (the secured local stack: `deploy/local/stack env`)",
        certain=False,
    )


def require_kafka(
    bootstrap: str, timeout: float = KAFKA_CHECK_SECONDS, security: Settings | None = None
) -> Any:
    """The cluster's metadata, or ServiceUnreachable as soon as librdkafka finds every
    bootstrap server down (at once for a refused connection), else after `timeout`;
    KafkaRefused as soon as the broker refuses our TLS or credentials."""
    errors: list[KafkaError] = []
    # What this client's librdkafka says is in the exception; only --debug shows it.
    quiet = _Noting(logging.getLogger("librdkafka.check"), ceiling=logging.DEBUG)
    config = client_config(bootstrap, security or get_settings(), {"logger": quiet})
    config["error_cb"] = errors.append
    client = AdminClient(config)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
        except KafkaException as exc:
            client.poll(0)  # serves error_cb
            for error in errors:
                refused = kafka_refusal(error, bootstrap, security)
                if refused is not None:
                    raise refused from exc
            down = any(e.code() == KafkaError._ALL_BROKERS_DOWN for e in errors)
            if down or time.monotonic() >= deadline:
                hung_up = _hung_up(quiet.texts, bootstrap, security or get_settings())
                if hung_up is not None:
                    raise hung_up from exc
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
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    if isinstance(error, KafkaError) and (refused := kafka_refusal(error, bootstrap)):
        return refused
    if isinstance(exc, KafkaException) and kafka_unreachable(exc):
        return ServiceUnreachable("Kafka", bootstrap, exc.args[0].str())
    if isinstance(exc, psycopg.OperationalError):
        return ServiceUnreachable("PostgreSQL", database_address(conninfo), _first_line(exc))
    from services.kafka_io import DeliveryFailed  # kafka_io builds its clients from here

    if isinstance(exc, DeliveryFailed):  # the broker went away while a command produced
        denied = None if exc.error is None else kafka_refusal(exc.error, bootstrap, topic=exc.topic)
        if denied is not None:
            return denied  # …or an ACL refused what it wrote
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
            if isinstance(missing, KafkaRefused) and missing.certain:
                raise missing from exc  # the same settings would be refused again
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
