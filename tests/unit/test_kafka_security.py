"""Kafka security without a broker: settings from *_FILE variables, the librdkafka
properties every client gets, refusals said in one line, `o2c config show` masking, and
the ACLs of each process derived from the topic registry."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from pydantic import SecretStr

from schemas.topics import ALL_TOPICS, OUTPUT_TOPICS, Role, changelog_topic, rerouted_topic
from services import manual_actions
from services.cli.config import masked, rows
from services.connections import (
    KafkaRefused,
    _hung_up,
    client_config,
    kafka_refusal,
    kafka_security,
    wait_for,
)
from services.kafka_acls import (
    CUSTOMER_DIRECTORY_GROUP,
    IMPORTER_GROUP,
    PROJECTIONS,
    PUBLISHER,
    READER_GROUP,
    WEB,
    WORKER,
    Grant,
    allowed,
    grants,
    manual_action_topics,
    projection_reads,
)
from services.settings import Settings, SettingsError

INPUTS = [t.name for t in ALL_TOPICS if t.role is Role.INPUT]
NOT_INPUTS = [t.name for t in ALL_TOPICS if t.role is not Role.INPUT]


CA = Path(__file__)  # any file that is there: nothing reads it without a broker


def secured(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "kafka_security_protocol": "SASL_SSL",
        "kafka_username": "worker",
        "kafka_password": SecretStr("pw"),
        "kafka_ca_file": CA,
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


PLAINTEXT = Settings(kafka_security_protocol="PLAINTEXT")


@pytest.fixture(autouse=True)
def no_o2c_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests set what they read: not the O2C_* variables of the shell running them
    (CI's stack, maybe a secured one)."""
    import os

    for name in os.environ:
        if name.upper().startswith("O2C_"):
            monkeypatch.delenv(name)


# --- settings from files ---------------------------------------------------------------------


def test_a_secret_setting_is_read_from_its_file_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kafka").write_text("s3cret\n")
    (tmp_path / "web").write_text("w3b")
    (tmp_path / "db").write_text("postgresql://o2c:pw@db:5432/o2c\n")
    monkeypatch.setenv("O2C_KAFKA_PASSWORD_FILE", str(tmp_path / "kafka"))
    monkeypatch.setenv("O2C_WEB_SECRET_FILE", str(tmp_path / "web"))
    monkeypatch.setenv("O2C_DATABASE_URL_FILE", str(tmp_path / "db"))
    settings = Settings()
    assert settings.kafka_password is not None
    assert settings.kafka_password.get_secret_value() == "s3cret"  # the newline dropped
    assert settings.web_secret is not None
    assert settings.web_secret.get_secret_value() == "w3b"
    assert settings.database_url == "postgresql://o2c:pw@db:5432/o2c"


def test_any_setting_can_come_from_a_file_even_a_json_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "patterns").write_text('["(X-\\\\d+)"]\n')
    monkeypatch.setenv("O2C_REFERENCE_PATTERNS_FILE", str(tmp_path / "patterns"))
    assert Settings().reference_patterns == ("(X-\\d+)",)


def test_a_file_variable_that_names_no_file_is_an_error_that_says_which(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("O2C_KAFKA_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match=r"O2C_KAFKA_PASSWORD_FILE names .*missing"):
        Settings()


def test_a_setting_given_both_ways_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "pw").write_text("a")
    monkeypatch.setenv("O2C_KAFKA_PASSWORD", "b")
    monkeypatch.setenv("O2C_KAFKA_PASSWORD_FILE", str(tmp_path / "pw"))
    with pytest.raises(SettingsError, match="both O2C_KAFKA_PASSWORD and"):
        Settings()


def test_the_protocol_and_mechanism_may_be_written_in_lower_case() -> None:
    settings = Settings(kafka_security_protocol="sasl_ssl", kafka_sasl_mechanism="plain")
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism) == (
        "SASL_SSL",
        "PLAIN",
    )


def test_the_password_never_shows_in_the_settings_repr() -> None:
    settings = secured(kafka_password=SecretStr("hunter2"))
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())


# --- client properties -----------------------------------------------------------------------


def test_a_plaintext_client_gets_no_security_property_at_all() -> None:
    assert kafka_security(PLAINTEXT) == {}
    config = client_config("h:1", PLAINTEXT, {"group.id": "g"})
    assert set(config) == {"bootstrap.servers", "logger", "group.id"}


def test_a_sasl_ssl_client_gets_tls_the_ca_and_its_credentials() -> None:
    assert kafka_security(secured()) == {
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(CA),
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "worker",
        "sasl.password": "pw",
    }


def test_an_ssl_client_sends_no_credentials() -> None:
    assert kafka_security(secured(kafka_security_protocol="SSL")) == {
        "security.protocol": "SSL",
        "ssl.ca.location": str(CA),
    }


def test_a_ca_file_that_is_not_there_is_said_in_one_line_before_connecting() -> None:
    with pytest.raises(KafkaRefused, match=r"O2C_KAFKA_CA_FILE names /nowhere/ca.pem, no file"):
        kafka_security(secured(kafka_ca_file=Path("/nowhere/ca.pem")))


def test_sasl_ssl_without_a_user_is_refused_before_connecting() -> None:
    with pytest.raises(KafkaRefused, match="O2C_KAFKA_USERNAME"):
        kafka_security(secured(kafka_username=None))


# --- refusals in one line --------------------------------------------------------------------


def test_failed_authentication_names_the_user_and_the_settings_to_fix() -> None:
    error = KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: invalid")
    refused = kafka_refusal(error, "k:1", secured())
    assert refused is not None
    text = str(refused)
    assert text.startswith("Kafka at k:1 refused our credentials (SASL authentication failed")
    assert "'worker'" in text
    assert "O2C_KAFKA_PASSWORD_FILE" in text
    assert "\n" not in text
    assert "not reachable" not in text
    assert refused.certain


def test_a_certificate_that_does_not_verify_points_at_the_ca_setting() -> None:
    error = KafkaError(KafkaError._SSL, "SSL handshake failed: certificate verify failed")
    refused = kafka_refusal(error, "k:1", secured())
    assert refused is not None
    assert "TLS handshake (certificate verify failed)" in str(refused)
    assert "O2C_KAFKA_CA_FILE" in str(refused)


def test_an_acl_refusal_names_the_user() -> None:
    error = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed")
    refused = kafka_refusal(error, "k:1", secured(kafka_username="publisher"))
    assert refused is not None
    assert "refused user 'publisher' (TOPIC_AUTHORIZATION_FAILED" in str(refused)


def test_other_errors_are_not_refusals() -> None:
    assert kafka_refusal(KafkaError(KafkaError._TRANSPORT), "k:1", PLAINTEXT) is None


def test_a_broker_that_hangs_up_on_a_plaintext_client_probably_wants_tls() -> None:
    texts = ["h:1/bootstrap: Disconnected: connection closed by peer: receive 0 after POLLIN"]
    refused = _hung_up(texts, "h:1", PLAINTEXT)
    assert refused is not None
    assert "expects TLS" in str(refused)
    assert not refused.certain  # a flaky network hangs up too
    assert _hung_up(["Connect to ipv4#h:1 failed: Connection refused"], "h:1", PLAINTEXT) is None


def test_a_long_running_process_stops_at_a_certain_refusal_and_waits_out_a_guess() -> None:
    log = logging.getLogger("test.security")
    refused = KafkaRefused("k:1", "refused our credentials", "fix")

    def refuse() -> None:
        raise KafkaException(KafkaError(KafkaError._AUTHENTICATION, "bad"))

    with pytest.raises(KafkaRefused):
        wait_for(refuse, "test", log, bootstrap="k:1", conninfo="")
    guesses = iter([KafkaRefused("k:1", "hung up", "fix", certain=False)])

    def guess_then_answer() -> str:
        for guess in guesses:
            raise guess
        return "metadata"

    assert wait_for(guess_then_answer, "t", log, bootstrap="k:1", conninfo="", first_pause=0)
    assert refused.certain


# --- o2c config show -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("postgresql://o2c:s3cret@db:5432/o2c", "postgresql://o2c:***@db:5432/o2c"),
        ("postgresql://o2c@db/o2c", "postgresql://o2c@db/o2c"),
        ("host=db user=o2c password=s3cret dbname=o2c", "host=db user=o2c password=*** dbname=o2c"),
        (SecretStr("s3cret"), "*** (set)"),
        (None, "-"),
    ],
)
def test_config_show_masks_passwords_wherever_they_are(value: object, shown: str) -> None:
    assert masked(value) == shown


def test_config_show_lists_every_setting_with_where_it_came_from() -> None:
    settings = secured(
        kafka_password=SecretStr("hunter2"),
        database_url="postgresql://o2c:s3cret@db/o2c",
        web_secret=SecretStr("w3b"),
    )
    environ = {"O2C_KAFKA_PASSWORD_FILE": "/run/secrets/kafka", "O2C_DATABASE_URL": "x"}
    found = {name: (value, origin) for name, value, origin in rows(settings, environ)}
    assert set(found) == {f"O2C_{f.upper()}" for f in Settings.model_fields}
    assert found["O2C_KAFKA_PASSWORD"] == (
        "*** (set)",
        "O2C_KAFKA_PASSWORD_FILE=/run/secrets/kafka",
    )
    assert found["O2C_DATABASE_URL"][1] == "O2C_DATABASE_URL"
    assert found["O2C_APP_ID"][1] == "default"
    text = str(found)
    for secret in ("hunter2", "s3cret", "w3b"):
        assert secret not in text


def test_config_show_prints_the_url_a_role_derives_from_the_owners_with_its_password_masked() -> (
    None
):
    settings = secured(database_url="postgresql://o2c:s3cret@db:5433/o2c")
    found = {name: (value, origin) for name, value, origin in rows(settings, {})}
    value, origin = found["O2C_READER_DATABASE_URL"]
    assert origin == "derived from O2C_DATABASE_URL"
    assert "o2c_reader_login" in value
    assert "password=***" in value
    assert settings.role_database_url("reader") not in value


# --- ACLs from the registry ------------------------------------------------------------------

APP = "o2c-matcher"
ACLS = grants(APP)


@pytest.mark.parametrize("topic", INPUTS)
def test_the_publisher_writes_every_input_topic(topic: str) -> None:
    assert allowed(ACLS, PUBLISHER, "WRITE", topic)


@pytest.mark.parametrize("topic", NOT_INPUTS)
def test_the_publisher_writes_nothing_but_inputs(topic: str) -> None:
    assert not allowed(ACLS, PUBLISHER, "WRITE", topic)


def test_the_worker_reads_its_inputs_and_writes_every_output_and_internal_topic() -> None:
    from services.worker.processors import WORKER_INPUTS

    assert all(allowed(ACLS, WORKER, "READ", t.name) for t in WORKER_INPUTS)
    assert all(allowed(ACLS, WORKER, "WRITE", t.name) for t in OUTPUT_TOPICS)
    assert not any(allowed(ACLS, WORKER, "WRITE", t) for t in INPUTS)
    own = [rerouted_topic(APP).name, changelog_topic(APP, "ledgers").name]
    for name in own:
        assert all(allowed(ACLS, WORKER, op, name) for op in ("READ", "WRITE", "CREATE"))
    assert not allowed(ACLS, WORKER, "CREATE", "o2c.orders")


def test_the_worker_owns_its_group_and_transactional_ids_and_no_one_elses() -> None:
    mine = [g for g in ACLS if g.principal == WORKER and g.resource != "topic"]
    assert Grant(WORKER, "group", APP, "literal", "READ") in mine
    assert Grant(WORKER, "transactional_id", f"{APP}-", "prefixed", "WRITE") in mine
    assert all(g.name.startswith(APP) or g.name == CUSTOMER_DIRECTORY_GROUP for g in mine)
    assert all(g.name.startswith("other") for g in grants("other") if g.resource != "topic"
               and g.principal == WORKER and g.name != CUSTOMER_DIRECTORY_GROUP)  # fmt: skip


def test_the_projections_read_what_they_project_and_write_only_dead_letters_and_alerts() -> None:
    assert all(allowed(ACLS, PROJECTIONS, "READ", t.name) for t in projection_reads())
    written = {t.name for t in ALL_TOPICS if allowed(ACLS, PROJECTIONS, "WRITE", t.name)}
    assert written == {"o2c.dead-letter", "o2c.alerts"}


def test_the_web_app_writes_only_where_manual_actions_go_and_reads_no_topic() -> None:
    written = {t.name for t in ALL_TOPICS if allowed(ACLS, WEB, "WRITE", t.name)}
    assert written == {t.name for t in manual_action_topics()}
    assert not written & set(INPUTS)
    assert not any(allowed(ACLS, WEB, "READ", t.name) for t in ALL_TOPICS)


def test_every_event_a_manual_action_makes_goes_where_the_web_app_may_write() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from schemas import events as ev
    from schemas.topics import destinations

    found = {
        "mismatch_id": "m1",
        "status": "open",
        "reason": ev.ReasonCode.AMBIGUOUS_BANK_LINE.value,
        "line_id": "L1",
        "actual": Decimal("10"),
        "currency": "EUR",
        "customer_id": "C1",
        "order_id": None,
    }
    now = datetime(2026, 11, 2, tzinfo=UTC)
    suggestion = ev.Suggestion(
        order_ids=("O1",), amount=Decimal(10), method="exact_amount", confidence=Decimal(1)
    )
    events = [
        manual_actions.assignment(found, "bob", by="a", source="s", now=now, note=None),
        *manual_actions.suggestion_applied(
            found, suggestion, {"O1": Decimal("10")}, by="a", source="s", now=now
        ),
    ]
    for event in events:
        for topic, _key in destinations(event):
            assert allowed(ACLS, WEB, "WRITE", topic.name), (event.type, topic.name)


def test_every_consumer_group_the_code_names_is_granted_to_the_process_that_uses_it() -> None:
    """The group names are strings in the code: this fails when one is renamed there."""
    root = Path(__file__).resolve().parents[2]
    uses = {
        IMPORTER_GROUP: ("services/importers/publishing.py", PUBLISHER),
        CUSTOMER_DIRECTORY_GROUP: ("services/worker/customer_directory.py", WORKER),
        READER_GROUP: ("services/kafka_io.py", PROJECTIONS),
    }
    for group, (path, principal) in uses.items():
        assert f'"{group}"' in (root / path).read_text(), (group, path)
        granted = {g.operation for g in ACLS if g.principal == principal and g.name == group}
        assert granted == {"READ", "DESCRIBE"}, (group, principal)
    for prefix, path in (("o2c-projection-", "projections/runner.py"),
                         ("o2c-rebuild", "projections/rebuild.py")):  # fmt: skip
        assert f'"{prefix}' in (root / path).read_text(), (prefix, path)
