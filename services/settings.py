"""All runtime configuration, read once from O2C_* environment variables."""

from __future__ import annotations

import json
import os
import socket
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from services.database_roles import ROLES, DatabaseRole, login_url
from services.domain.bank_routing import (
    DEFAULT_INVOICE_NUMBER_PATTERNS,
    DEFAULT_INVOICE_PATTERNS,
    DEFAULT_PAYOUT_PATTERNS,
)
from services.domain.policy import (
    DEFAULT_FEE_TOLERANCE,
    DEFAULT_SETTLEMENT_DAYS,
    DEFAULT_TOLERANCE,
    Policy,
)
from services.domain.references import DEFAULT_ORDER_PATTERNS

PREFIX = "O2C_"
FILE_SUFFIX = "_FILE"


class SettingsError(ValueError):
    """A setting that cannot be read (a *_FILE that names no readable file, or both ways)."""


def variable(field: str) -> str:
    """The environment variable of a setting: kafka_password -> O2C_KAFKA_PASSWORD."""
    return f"{PREFIX}{field.upper()}"


class FileVariables(PydanticBaseSettingsSource):
    """Any setting O2C_X may instead be given as O2C_X_FILE, the path of a file holding
    its value (a Kubernetes or Docker secret mounted as a file), so that a secret is in no
    process's environment. One trailing newline is dropped; setting both is an error."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._environ = {k.upper(): v for k, v in os.environ.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = variable(field_name)
        path = self._environ.get(name + FILE_SUFFIX)
        if path is None:
            return None, field_name, False
        if name in self._environ:
            raise SettingsError(f"both {name} and {name}{FILE_SUFFIX} are set: keep one")
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(
                f"{name}{FILE_SUFFIX} names {path}, which cannot be read ({exc.strerror})"
            ) from None
        text = text[:-1] if text.endswith("\n") else text
        text = text[:-1] if text.endswith("\r") else text
        return text, field_name, self.field_is_complex(field)

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, complex_ = self.get_field_value(field, field_name)
            if value is None:
                continue
            try:
                values[key] = json.loads(value) if complex_ else value
            except ValueError:
                raise SettingsError(f"{from_file(field_name)}: not JSON") from None
        return values


def from_file(field: str) -> str | None:
    """The *_FILE variable a setting was read from, if it was."""
    return next(
        (v for k, v in os.environ.items() if k.upper() == variable(field) + FILE_SUFFIX), None
    )


class Settings(BaseSettings):
    """Defaults match deploy/local, so a fresh checkout needs no configuration."""

    model_config = SettingsConfigDict(env_prefix="O2C_", frozen=True)

    kafka_bootstrap: str = "127.0.0.1:9092"
    # How every Kafka client (worker, projections, CLI, importers, web app) talks to the
    # broker (docs/operations.md, "Running secured"): PLAINTEXT (the local stack's default),
    # SSL (TLS, the broker's certificate checked against kafka_ca_file), or SASL_SSL (TLS,
    # and the user kafka_username / kafka_password proves who it is with
    # kafka_sasl_mechanism). Like every setting, the password may come from a file:
    # O2C_KAFKA_PASSWORD_FILE.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    # PEM file of the CA that signed the broker's certificate; unset: the system's CAs.
    kafka_ca_file: Path | None = None
    # The owner's PostgreSQL URL: `o2c db migrate`, `o2c users`, the schema swap of
    # `o2c projections rebuild` and `o2c doctor`. TLS: libpq's parameters in the URL, e.g.
    # "?sslmode=verify-full&sslrootcert=/etc/o2c/pg-ca.pem" (or PGSSLMODE/PGSSLROOTCERT).
    database_url: str = "postgresql://o2c:o2c@127.0.0.1:5432/o2c"
    # Each process's own login (docs/operations.md, "Database roles"): projections write as
    # the projector, `o2c report` and dashboards read as the reader, `o2c web` as the web
    # role; `o2c db migrate` creates the users named here, with these passwords. Unset:
    # derived from database_url (user o2c_<role>_login, a password derived from the owner's,
    # the same host and parameters), so the local stack and CI need none of them.
    projector_database_url: str | None = None
    reader_database_url: str | None = None
    web_database_url: str | None = None
    # Application id: the workers' consumer group, and the prefix of their changelog topics
    # and state directory. Workers with the same id share the work.
    app_id: str = "o2c-matcher"
    metrics_port: int = 9108
    # Address every Prometheus endpoint binds: loopback by default; 0.0.0.0 where a scraper
    # on another host (a pod's, a container's) must reach it.
    metrics_host: str = "127.0.0.1"
    state_dir: Path = Path(".o2c-state")
    # True: the rule modules that `make install` compiled with mypyc are imported from their
    # .py sources instead (slower, deciding the same; see docs/contributing.md). Read from
    # the environment by services/domain/native.py before any rule module is imported.
    pure_python: bool = False
    # at_least_once: outputs acknowledged before offsets are committed, deduplicated by id
    # downstream (the default, and the faster). exactly_once: outputs, state and offsets in
    # one Kafka transaction; readers must use isolation.level=read_committed.
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    # How often handled work is committed: outputs flushed, state changes written to the
    # changelogs, input offsets committed. Outputs are sent as they are made, so readers
    # see them at once with at_least_once; with exactly_once they are visible only once
    # committed, so this is their added latency. A crash repeats at most this much work.
    commit_interval_ms: float = Field(default=100.0, ge=0)
    # How long a task waits for an input partition that has nothing buffered but more on
    # the broker, before it goes on in event-time order without it (docs/architecture.md).
    max_task_idle_ms: float = Field(default=20.0, ge=0)
    # What a failure inside a core does: stop the worker without committing, so that the
    # batch is handled again after a restart (a bug is not bad input), or dead-letter the
    # event and carry on.
    on_core_error: Literal["stop", "dead-letter"] = "stop"
    # Processes `o2c worker` starts, each one consumer in the group (0: one per core).
    worker_processes: int = Field(default=1, ge=0)
    # This worker process's name in the group, unique per process: with exactly_once, the
    # transactional id is "{app_id}-{instance_id}", so a restarted process fences its
    # predecessor. `o2c worker --processes N` appends the process number.
    instance_id: str = Field(default_factory=lambda: socket.gethostname())
    # Memory of each RocksDB database (one per store and partition: 4 stores x 12 here),
    # about (write buffer x 2 + block cache) each, so that memory does not grow with state.
    rocksdb_write_buffer_mb: int = Field(default=8, ge=1)
    rocksdb_block_cache_mb: int = Field(default=16, ge=1)
    # Where a new application id starts reading its inputs. The log is the truth, so a new
    # deployment starts at offset 0; tests use "latest" to see only their own events.
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    topic_partitions: int = 12
    log_level: str = "info"
    # The most records a worker takes from the consumer, and a task handles, per batch; a
    # batch's state is recorded once its outputs are acknowledged.
    batch_max_events: int = 1000
    # How long the broker waits for a silent worker (or projections process) before giving
    # its partitions to others.
    session_timeout_seconds: float = 30.0
    # CloudEvents `source` of everything o2c-matcher writes.
    source: str = "o2c-matcher"
    # Regular expressions whose first group is an order id, tried in turn on the reference
    # of a payment that names no order (JSON list, e.g. '["(ORD-\\d+)"]').
    reference_patterns: tuple[str, ...] = DEFAULT_ORDER_PATTERNS
    # Write-off tolerance in currency units, and per currency (JSON object).
    tolerance: Decimal = DEFAULT_TOLERANCE
    tolerance_by_currency: dict[str, Decimal] = Field(default_factory=dict)
    # Business days after capture by which a payment of a method should be paid out.
    settlement_days: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_SETTLEMENT_DAYS))
    # How far a payout item's fee may differ from its capture's before FEE_MISMATCH.
    fee_tolerance: Decimal = DEFAULT_FEE_TOLERANCE
    # Settlement and bank matching (README, "Settlement and bank matching"). Patterns are
    # regular expressions whose first group is the id, optionally "REGEX -> TEMPLATE".
    payout_patterns: tuple[str, ...] = DEFAULT_PAYOUT_PATTERNS
    invoice_patterns: tuple[str, ...] = DEFAULT_INVOICE_PATTERNS
    invoice_number_patterns: tuple[str, ...] = DEFAULT_INVOICE_NUMBER_PATTERNS
    payer_similarity: Decimal = Decimal("0.85")
    payout_bank_days: int = 2
    suspense_window_days: int = 120
    combination_max_items: int = 20
    combination_max_steps: int = 20_000
    # Read side (projections/): the PostgreSQL schema dashboards read, the DSO target in
    # days (an alert above target x 1.1), and the most messages one transaction takes.
    read_schema: str = "o2c_read"
    dso_target_days: Decimal = Decimal(45)
    projection_batch_max: int = 5000
    # The finance workbench (`o2c web`): where it listens, and the secret that signs its
    # session cookies and CSRF tokens (it refuses to start without one, unless --demo).
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8000, ge=1, le=65535)
    web_secret: SecretStr | None = None
    # Prometheus endpoint of `o2c projections run` (0: off); beside the worker's 9108.
    projection_metrics_port: int = 9109
    # Prometheus endpoint of `o2c web` (0: off): requests by route and status, their time,
    # and the 503s answered while PostgreSQL or Kafka was away. Apart from the app's port,
    # so that a scraper needs no login and the workbench's port need not be exposed to it.
    web_metrics_port: int = 9110

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            FileVariables(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value  # sasl_ssl is SASL_SSL

    def role_database_url(self, role: DatabaseRole) -> str:
        """The connection string the process of `role` connects with."""
        given: str | None = getattr(self, f"{role}_database_url")
        return given or login_url(self.database_url, role)

    def role_database_urls(self) -> dict[DatabaseRole, str]:
        return {role: self.role_database_url(role) for role in ROLES}

    def policy(self) -> Policy:
        return Policy(
            default_tolerance=self.tolerance,
            tolerance_by_currency=self.tolerance_by_currency,
            settlement_days=self.settlement_days,
            fee_tolerance=self.fee_tolerance,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
