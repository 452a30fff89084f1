"""The shared bits of failing well (issue #21): librdkafka's log deduplicated at warning
level, the one-line error, the translation of connection failures, waiting with backoff."""

from __future__ import annotations

import logging

import psycopg
import pytest
from confluent_kafka import KafkaError, KafkaException

from services.connections import (
    KafkaRefused,
    LibrdkafkaLog,
    ServiceUnreachable,
    database_address,
    kafka_config,
    unreachable,
    wait_for,
)
from services.kafka_io import DeliveryFailed

FAIL = (
    "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused "
    "(after {ms}ms in state CONNECT)"
)


def test_a_repeated_librdkafka_message_is_logged_once_a_window_at_most_at_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = LibrdkafkaLog(logging.getLogger("test.librdkafka"), window=60)
    with caplog.at_level(logging.DEBUG, "test.librdkafka"):
        for ms in (0, 2, 0, 1):
            log.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#producer-1", FAIL.format(ms=ms))
        log.log(logging.INFO, "%s [%s] %s", "CONFWARN", "rdkafka#producer-1", "another thing")
    assert [(r.levelno, r.getMessage().split(" [")[0]) for r in caplog.records] == [
        (logging.WARNING, "FAIL"),
        (logging.INFO, "CONFWARN"),
    ]


def test_after_the_window_a_repeated_message_says_how_many_were_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = LibrdkafkaLog(logging.getLogger("test.librdkafka"), window=60)
    with caplog.at_level(logging.DEBUG, "test.librdkafka"):
        log.log(logging.ERROR, "%s [%s] %s", "FAIL", "c", FAIL.format(ms=0))
        log.log(logging.ERROR, "%s [%s] %s", "FAIL", "c", FAIL.format(ms=3))
        log.window = 0.0
        log.log(logging.ERROR, "%s [%s] %s", "FAIL", "c", FAIL.format(ms=0))
    assert len(caplog.records) == 2
    assert "(and 1 more like it" in caplog.records[1].getMessage()


def test_every_client_config_carries_the_shared_logger() -> None:
    config = kafka_config("127.0.0.1:1", **{"group.id": "g"})
    assert config["bootstrap.servers"] == "127.0.0.1:1"
    assert isinstance(config["logger"], LibrdkafkaLog)
    assert config["group.id"] == "g"


@pytest.mark.parametrize(
    ("service", "variable"),
    [("Kafka", "O2C_KAFKA_BOOTSTRAP"), ("PostgreSQL", "O2C_DATABASE_URL")],
)
def test_the_one_line_names_the_address_and_what_to_do(service: str, variable: str) -> None:
    text = str(ServiceUnreachable(service, "127.0.0.1:2", "Connection refused"))  # type: ignore[arg-type]
    assert "\n" not in text
    assert f"{service} is not reachable at 127.0.0.1:2 (Connection refused)" in text
    assert "`make up`" in text
    assert variable in text


def test_the_database_address_leaves_out_user_and_password() -> None:
    assert database_address("postgresql://o2c:secret@db.example:6543/sales") == (
        "db.example:6543/sales"
    )
    assert database_address("host=127.0.0.1 dbname=o2c password=secret") == "127.0.0.1:5432/o2c"


def test_connection_failures_are_translated_and_other_failures_are_not() -> None:
    kafka = unreachable(
        KafkaException(KafkaError(KafkaError._TRANSPORT, "down")), "k:1", "postgresql://h:2/d"
    )
    database = unreachable(
        psycopg.OperationalError('connection to server at "h", port 2 failed: refused'),
        "k:1",
        "postgresql://u:p@h:2/d",
    )
    assert kafka is not None
    assert (kafka.service, kafka.address) == ("Kafka", "k:1")
    assert database is not None
    assert (database.service, database.address, database.reason) == (
        "PostgreSQL",
        "h:2/d",
        "refused",
    )
    assert unreachable(KafkaException(KafkaError(KafkaError.INVALID_CONFIG)), "", "") is None
    # An ACL's refusal is not a service away, but is said in one line too (KafkaRefused).
    refused = unreachable(
        KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)), "k:1", ""
    )
    assert isinstance(refused, KafkaRefused)
    assert "TOPIC_AUTHORIZATION_FAILED" in str(refused)
    assert unreachable(ValueError("a bug"), "k:1", "") is None
    undelivered = unreachable(DeliveryFailed("3 messages not delivered within 60.0s"), "k:1", "")
    assert undelivered is not None
    assert undelivered.service == "Kafka"


def test_waiting_retries_a_missing_service_and_says_so_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts = iter([ServiceUnreachable("Kafka", "k:1", "refused")] * 3 + [None])

    def attempt() -> str:
        failure = next(attempts)
        if failure is not None:
            raise failure
        return "connected"

    with caplog.at_level(logging.INFO, "test.wait"):
        result = wait_for(
            attempt,
            "worker",
            logging.getLogger("test.wait"),
            bootstrap="k:1",
            conninfo="",
            first_pause=0.01,
        )
    assert result == "connected"
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "waiting for Kafka" in m]) == 1
    assert "reachable again" in messages[-1]


def test_waiting_does_not_hide_a_failure_that_is_not_a_missing_service() -> None:
    def attempt() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        wait_for(attempt, "worker", logging.getLogger("test.wait"), bootstrap="", conninfo="")


def test_waiting_ends_when_the_process_is_asked_to_stop() -> None:
    def attempt() -> None:
        raise ServiceUnreachable("PostgreSQL", "h:2/d", "refused")

    calls = iter([False, True])
    assert (
        wait_for(
            attempt,
            "projections",
            logging.getLogger("test.wait"),
            bootstrap="",
            conninfo="",
            stopping=lambda: next(calls, True),
            first_pause=0.01,
        )
        is None
    )


@pytest.mark.parametrize(
    ("said", "reason"),
    [
        (FAIL.format(ms=0), "Connection refused"),
        (
            "h:9092/bootstrap: Failed to resolve 'h:9092': Name or service not known "
            "(after 1ms in state CONNECT)",
            "Failed to resolve 'h:9092': Name or service not known",
        ),
        (
            "h:80/bootstrap: Receive failed: Invalid response size 1213486160 (0..100000000): "
            "increase receive.message.max.bytes",
            "something answered, but not as Kafka: a wrong port or security protocol?",
        ),
    ],
)
def test_the_reason_is_what_librdkafka_said_without_its_broker_prefix(
    said: str, reason: str
) -> None:
    from services.connections import _reason

    assert _reason([KafkaError(KafkaError._TRANSPORT, said)], "fallback") == reason


def test_a_refused_database_login_says_to_create_the_logins_not_to_start_the_stack() -> None:
    refused = str(
        ServiceUnreachable(
            "PostgreSQL", "db:5432/o2c", 'password authentication failed for user "o2c_web_login"'
        )
    )
    assert "refused the login" in refused
    assert "o2c db migrate" in refused
    assert "O2C_WEB_DATABASE_URL" in refused
    assert "make up" not in refused
    down = str(ServiceUnreachable("PostgreSQL", "db:5432/o2c", "Connection refused"))
    assert "make up" in down
