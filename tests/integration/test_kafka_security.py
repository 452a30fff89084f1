"""A secured broker of its own (`deploy/local/stack up` with O2C_KAFKA_SECURITY=sasl_ssl:
TLS, SCRAM-SHA-512 users, the ACLs of services/kafka_acls.py): a client without
credentials or with a wrong password is refused in one line, each process may write only
its own topics, and the whole pipeline works with each process as its own user.

The stack has its own folder and ports (O2C_TEST_SECURED_STACK_DIR, a fresh folder under
/var/tmp by default; O2C_TEST_SECURED_PORTS, e.g. 49100-49199, else any free ports) and is
stopped and removed at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from pydantic import SecretStr

from services.connections import KafkaRefused, client_config, require_kafka
from services.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STACK = str(REPO / "deploy/local/stack")
O2C = str(Path(sys.executable).with_name("o2c"))
SAMPLE = REPO / "services/samples/demo.jsonl"
STATEMENT = REPO / "tests/data/bank/mt940/zenith_statement_number_slash.sta"
ASSIGNED = (
    '{"specversion":"1.0","id":"a1","source":"t","type":"o2c.mismatch.assigned.v1",'
    '"time":"2026-11-02T09:07:00Z","datacontenttype":"application/json","data":'
    '{"mismatch_id":"m1","assignee":"a","assigned_at":"2026-11-02T09:07:00Z","order_id":"O1"}}'
)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ports(count: int) -> list[int]:
    """`count` free ports: from O2C_TEST_SECURED_PORTS (low-high) if set, else any."""
    wanted = os.environ.get("O2C_TEST_SECURED_PORTS")
    if not wanted:
        found: list[int] = []
        while len(found) < count:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            found += [port] if port not in found else []
        return found
    low, high = (int(p) for p in wanted.split("-"))
    free = [p for p in range(low, high + 1) if _port_free(p)]
    assert len(free) >= count, f"fewer than {count} free ports in {wanted}"
    return free[:count]


@dataclass(frozen=True)
class SecuredStack:
    bootstrap: str
    database_url: str
    ca_file: Path
    secrets: Path
    base_env: dict[str, str]  # the stack's O2C_* variables, no Kafka user

    def password(self, user: str) -> str:
        return (self.secrets / f"{user}.password").read_text().strip()

    def settings(self, user: str | None, password: str | None = None) -> Settings:
        """A client's settings as `user`; None: a plaintext client with no credentials."""
        if user is None:
            return Settings(kafka_bootstrap=self.bootstrap, kafka_security_protocol="PLAINTEXT")
        return Settings(
            kafka_bootstrap=self.bootstrap,
            kafka_security_protocol="SASL_SSL",
            kafka_username=user,
            kafka_password=SecretStr(password or self.password(user)),
            kafka_ca_file=self.ca_file,
        )

    def env(self, user: str | None, **extra: str) -> dict[str, str]:
        """The environment of an `o2c` process as `user` (None: no security settings)."""
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("O2C_")}
        env.update(self.base_env)
        if user is not None:
            env.update(
                O2C_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
                O2C_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
                O2C_KAFKA_CA_FILE=str(self.ca_file),
                O2C_KAFKA_USERNAME=user,
                O2C_KAFKA_PASSWORD_FILE=str(self.secrets / f"{user}.password"),
            )
        env.update(extra)
        return env


def _exports(text: str) -> dict[str, str]:
    return dict(
        line.removeprefix("export ").replace("'", "").split("=", 1)
        for line in text.splitlines()
        if line.startswith("export ")
    )


def _seed_kafka_jars(folder: Path) -> None:
    """The broker's jars from the usual stack, if it has them for the current pom.xml:
    the stack then skips Maven (it checks the pom's checksum in the copy)."""
    usual = Path(os.environ.get("O2C_STACK_DIR") or REPO / ".local-stack") / "kafka/libs"
    target = folder / "kafka/libs"
    if (usual / ".pom.sha256").exists() and not target.exists():
        shutil.copytree(usual, target)


@pytest.fixture(scope="module")
def secured() -> Iterator[SecuredStack]:
    if shutil.which("openssl") is None:
        pytest.skip("the secured stack makes its CA and certificate with openssl: not installed")
    kafka, controller, pg = _ports(3)
    folder = os.environ.get("O2C_TEST_SECURED_STACK_DIR") or tempfile.mkdtemp(
        prefix="o2c-stack-secured-", dir="/var/tmp"
    )
    os.chmod(folder, 0o755)  # PostgreSQL runs as its own OS user when we are root
    _seed_kafka_jars(Path(folder))
    stack_env = {k: v for k, v in os.environ.items() if not k.upper().startswith("O2C_")}
    stack_env.update(
        O2C_STACK_DIR=folder,
        O2C_KAFKA_PORT=str(kafka),
        O2C_KAFKA_CONTROLLER_PORT=str(controller),
        O2C_PG_PORT=str(pg),
        O2C_KAFKA_SECURITY="sasl_ssl",
        O2C_STACK_TIMEOUT="150",
        O2C_STACK_PYTHON=sys.executable,  # the users and ACLs are made with o2c-matcher's code
    )
    try:
        up = subprocess.run(
            [STACK, "up"], env=stack_env, capture_output=True, text=True, timeout=240
        )
        assert up.returncode == 0, f"secured stack up failed:\n{up.stderr[-4000:]}"
        exports = _exports(
            subprocess.run(
                [STACK, "env"], env=stack_env, capture_output=True, text=True, check=True
            ).stdout
        )
        stack = SecuredStack(
            bootstrap=exports["O2C_KAFKA_BOOTSTRAP"],
            database_url=exports["O2C_DATABASE_URL"],
            ca_file=Path(exports["O2C_KAFKA_CA_FILE"]),
            secrets=Path(exports["O2C_KAFKA_PASSWORD_FILE"]).parent,
            base_env={
                "O2C_KAFKA_BOOTSTRAP": exports["O2C_KAFKA_BOOTSTRAP"],
                "O2C_DATABASE_URL": exports["O2C_DATABASE_URL"],
                "O2C_METRICS_PORT": "0",
                "O2C_PROJECTION_METRICS_PORT": "0",
            },
        )
        topics = _o2c(stack, "admin", "topics", "create")
        assert topics.returncode == 0, topics.stderr
        yield stack
    finally:
        subprocess.run([STACK, "down"], env=stack_env, capture_output=True, timeout=120)
        if not os.environ.get("O2C_TEST_SECURED_STACK_DIR"):
            shutil.rmtree(folder, ignore_errors=True)


def _o2c(
    stack: SecuredStack, user: str | None, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [O2C, *args],
        env=stack.env(user, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _deliver(settings: Settings, topic: str) -> KafkaError | None:
    """Produce one record to `topic` as `settings`' user: the broker's error, or None."""
    outcome: list[KafkaError | None] = []
    producer = Producer(
        client_config(settings.kafka_bootstrap, settings, {"message.timeout.ms": 20_000})
    )
    producer.produce(topic, b"{}", key=b"k", on_delivery=lambda e, _m: outcome.append(e))
    producer.flush(30)
    assert outcome, f"no delivery report for {topic} within 30s"
    return outcome[0]


# --- refused ---------------------------------------------------------------------------------


def test_a_client_without_credentials_is_refused_in_one_line(secured: SecuredStack) -> None:
    with pytest.raises(KafkaRefused) as refused:
        require_kafka(secured.bootstrap, security=secured.settings(None))
    assert "hung up on our PLAINTEXT connection" in str(refused.value)
    done = _o2c(secured, None, "tail", "o2c.matches", "--until-idle", "1")
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"o2c: Kafka at {secured.bootstrap} hung up")
    assert "O2C_KAFKA_SECURITY_PROTOCOL" in line
    assert "not reachable" not in line


def test_a_wrong_password_is_refused_in_one_line_that_names_the_user(
    secured: SecuredStack, tmp_path: Path
) -> None:
    with pytest.raises(KafkaRefused, match="refused our credentials"):
        require_kafka(secured.bootstrap, security=secured.settings("publisher", "wrong"))
    (tmp_path / "wrong").write_text("wrong\n")
    done = _o2c(secured, "publisher", "doctor", O2C_KAFKA_PASSWORD_FILE=str(tmp_path / "wrong"))
    assert done.returncode == 2, done.stdout + done.stderr
    kafka = next(line for line in done.stdout.splitlines() if line.startswith("kafka "))
    assert "refused" in kafka
    assert "SASL authentication failed for user 'publisher'" in kafka
    assert secured.password("publisher") not in done.stdout + done.stderr


def test_the_right_password_is_let_in(secured: SecuredStack) -> None:
    metadata = require_kafka(secured.bootstrap, security=secured.settings("publisher"))
    assert "o2c.orders" in metadata.topics


def test_the_publisher_writes_an_input_topic_but_is_refused_an_output_topic(
    secured: SecuredStack, tmp_path: Path
) -> None:
    publisher = secured.settings("publisher")
    assert _deliver(publisher, "o2c.orders") is None
    refused = _deliver(publisher, "o2c.matches")
    assert refused is not None
    assert refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # An importer reads back what it published, to leave out what is there already.
    for expected in ("2 new, 0 already imported", "0 new, 2 already imported"):
        imported = _o2c(secured, "publisher", "import", "bank", str(STATEMENT))
        assert imported.returncode == 0, imported.stderr
        assert expected in (imported.stdout + imported.stderr).splitlines()
    # `o2c publish` of an output event says so in one line.
    (tmp_path / "output.jsonl").write_text(ASSIGNED + "\n")
    done = _o2c(secured, "publisher", "publish", str(tmp_path / "output.jsonl"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        f"o2c: Kafka at {secured.bootstrap} refused user 'publisher' writing o2c.mismatches"
    )


def test_the_web_app_writes_a_manual_action_topic_but_is_refused_an_input_topic(
    secured: SecuredStack,
) -> None:
    web = secured.settings("web")
    assert _deliver(web, "o2c.mismatches") is None
    refused = _deliver(web, "o2c.orders")
    assert refused is not None
    assert refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


# --- the pipeline ----------------------------------------------------------------------------


def _matches(stack: SecuredStack, deadline: float) -> list[Message]:
    """The worker's outputs on o2c.matches, read as admin, once some have arrived."""
    consumer = Consumer(
        client_config(
            stack.bootstrap,
            stack.settings("admin"),
            {"group.id": f"test-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False},
        )
    )
    try:
        metadata = consumer.list_topics("o2c.matches", timeout=30).topics["o2c.matches"]
        consumer.assign([TopicPartition("o2c.matches", p, 0) for p in metadata.partitions])
        found: list[Message] = []
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, timeout=1.0)
            found += [m for m in batch if m.error() is None]
            if found and not batch:
                return found
        return found
    finally:
        consumer.close()


def test_the_pipeline_works_with_each_process_as_its_own_user(
    secured: SecuredStack, tmp_path: Path
) -> None:
    published = _o2c(secured, "publisher", "publish", str(SAMPLE))
    assert published.returncode == 0, published.stderr
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [O2C, "worker"],
            env=secured.env("worker", O2C_STATE_DIR=str(tmp_path / "state")),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        matches = _matches(secured, time.monotonic() + 90)
        assert matches, f"no match on o2c.matches within 90s:\n{log.read_text()[-3000:]}"
        assert worker.poll() is None, log.read_text()[-3000:]
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    assert "AUTHORIZATION_FAILED" not in log.read_text()
    assert secured.password("worker") not in log.read_text()  # secrets are never logged

    projected = _o2c(secured, "projections", "projections", "run", "--until-idle", "3")
    assert projected.returncode == 0, projected.stderr[-3000:]
    with psycopg.connect(secured.database_url) as conn:
        orders = conn.execute("SELECT count(*) FROM o2c_read.orders").fetchone()
        matched = conn.execute("SELECT count(*) FROM o2c_read.order_matches").fetchone()
    placed = sum('"o2c.order.placed.v1"' in line for line in SAMPLE.read_text().splitlines())
    assert orders == (placed,)
    assert matched is not None
    assert matched[0] > 0
