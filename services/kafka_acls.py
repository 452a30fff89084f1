"""Who may do what on a secured broker: the least-privilege ACLs of each o2c-matcher
process, derived from the topic registry (schemas/topics.py) and what each process reads,
never listed by hand; and applying them (users and ACLs) as the super user.

principal    may
publisher    write (and read back) the input topics: `o2c publish`, `o2c import`, upstream
worker       read its inputs; write the outputs and the internal topics; create, read and
             write its own topics ({app_id}-*: changelogs, rerouted); its consumer groups
             and transactional ids ({app_id}, {app_id}-*)
projections  read what the read models and the timeline read; write only the dead-letter
             and alert topics; its consumer groups (o2c-projection-*, o2c-rebuild-*)
web          write only where manual actions go (`o2c web`, `o2c exceptions assign/resolve`)
admin        super user (`super.users`): topics, ACLs, doctor, tail, dlq

Used by deploy/local/stack (O2C_KAFKA_SECURITY=sasl_ssl):
    python -m services.kafka_acls apply --secrets DIR   # as admin: users from DIR/*.password
    python -m services.kafka_acls list                  # the table of grants
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from schemas import events as ev
from schemas.base import CloudEvent
from schemas.events import type_name
from schemas.topics import (
    ALERTS,
    ALL_TOPICS,
    COPIES,
    DEAD_LETTER,
    HOME_TOPIC,
    OUTPUT_TOPICS,
    Role,
    Topic,
)

Resource = Literal["topic", "group", "transactional_id"]
Pattern = Literal["literal", "prefixed"]
Operation = Literal["READ", "WRITE", "DESCRIBE", "CREATE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"]

ADMIN = "admin"
PUBLISHER, WORKER, PROJECTIONS, WEB = "publisher", "worker", "projections", "web"
USERS: tuple[str, ...] = (PUBLISHER, WORKER, PROJECTIONS, WEB)

# What a person's action publishes (services/manual_actions.py): the only events the web
# app writes.
MANUAL_ACTION_TYPES: tuple[type[CloudEvent], ...] = (
    ev.MismatchAssigned,
    ev.MismatchResolved,
    ev.PaymentApplied,
)
# Where the projections write: the dead letters of what they cannot read, and the alerts
# they raise (projections/alerts.py).
PROJECTION_WRITES: tuple[Topic, ...] = (DEAD_LETTER, ALERTS)
# The consumer-group prefixes of the projections (projections/runner.py, rebuild.py).
PROJECTION_GROUPS = ("o2c-projection-", "o2c-rebuild-")
# Groups of readers that assign partitions themselves and commit nothing; their consumer
# still asks for the group's coordinator, which takes DESCRIBE on the group.
READER_GROUP = "o2c-reader"  # services/kafka_io.py: end offsets (the projections' lag)
IMPORTER_GROUP = "o2c-importer"  # services/importers/publishing.py: what is published
CUSTOMER_DIRECTORY_GROUP = "o2c-customer-directory"  # services/worker/customer_directory.py
GROUP_OPS: tuple[Operation, ...] = ("READ", "DESCRIBE")


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL, for any host."""

    principal: str  # a user name; the ACL's principal is User:<principal>
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation


def manual_action_topics() -> tuple[Topic, ...]:
    """The home topic and internal copies of every event a manual action publishes."""
    names = [type_name(t) for t in MANUAL_ACTION_TYPES]
    topics = [HOME_TOPIC[n] for n in names] + [c.topic for n in names for c in COPIES.get(n, ())]
    return tuple(dict.fromkeys(topics))


def projection_reads() -> tuple[Topic, ...]:
    from projections.model import TOPICS as READ_MODELS
    from projections.timeline import TOPICS as TIMELINE

    return tuple(dict.fromkeys((*READ_MODELS, *TIMELINE)))


def worker_reads() -> tuple[Topic, ...]:
    from services.worker.processors import WORKER_INPUTS

    return WORKER_INPUTS


def _topics(principal: str, topics: Iterable[Topic], *ops: Operation) -> list[Grant]:
    return [Grant(principal, "topic", t.name, "literal", op) for t in topics for op in ops]


def grants(app_id: str) -> list[Grant]:
    """Every ACL of every process, for the workers of application id `app_id`."""
    inputs = [t for t in ALL_TOPICS if t.role is Role.INPUT]
    found: list[Grant] = [
        *_topics(PUBLISHER, inputs, "WRITE", "READ", "DESCRIBE"),
        *(Grant(PUBLISHER, "group", IMPORTER_GROUP, "literal", op) for op in GROUP_OPS),
        *_topics(WORKER, worker_reads(), "READ", "DESCRIBE"),
        *_topics(WORKER, OUTPUT_TOPICS, "WRITE", "DESCRIBE"),
        *(
            Grant(WORKER, "topic", f"{app_id}-", "prefixed", op)
            for op in ("READ", "WRITE", "DESCRIBE", "CREATE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS")
        ),
        *(Grant(WORKER, "group", app_id, "literal", op) for op in GROUP_OPS),
        *(Grant(WORKER, "group", f"{app_id}-", "prefixed", op) for op in GROUP_OPS),
        *(Grant(WORKER, "group", CUSTOMER_DIRECTORY_GROUP, "literal", op) for op in GROUP_OPS),
        *(
            Grant(WORKER, "transactional_id", f"{app_id}-", "prefixed", op)
            for op in ("WRITE", "DESCRIBE")
        ),
        *_topics(PROJECTIONS, projection_reads(), "READ", "DESCRIBE"),
        *_topics(PROJECTIONS, PROJECTION_WRITES, "WRITE", "DESCRIBE"),
        *(
            Grant(PROJECTIONS, "group", prefix, "prefixed", op)
            for prefix in PROJECTION_GROUPS
            for op in GROUP_OPS
        ),
        *(Grant(PROJECTIONS, "group", READER_GROUP, "literal", op) for op in GROUP_OPS),
        *_topics(WEB, manual_action_topics(), "WRITE", "DESCRIBE"),
    ]
    return sorted(set(found))


def allowed(found: Sequence[Grant], principal: str, operation: Operation, topic: str) -> bool:
    """Whether `found` lets `principal` do `operation` on topic `topic` (as the broker
    decides: a literal name or a prefix of it)."""
    return any(
        g.principal == principal
        and g.resource == "topic"
        and g.operation == operation
        and (g.name == topic if g.pattern == "literal" else topic.startswith(g.name))
        for g in found
    )


# --- applying them ---------------------------------------------------------------------------


def _acl_bindings(found: Sequence[Grant]) -> list[object]:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    kinds = {
        "topic": ResourceType.TOPIC,
        "group": ResourceType.GROUP,
        "transactional_id": ResourceType.TRANSACTIONAL_ID,
    }
    patterns = {"literal": ResourcePatternType.LITERAL, "prefixed": ResourcePatternType.PREFIXED}
    return [
        AclBinding(
            kinds[g.resource],
            g.name,
            patterns[g.pattern],
            f"User:{g.principal}",
            "*",
            AclOperation[g.operation],
            AclPermissionType.ALLOW,
        )
        for g in found
    ]


def apply(admin_config: dict[str, Any], secrets: Path, app_id: str) -> int:
    """Create (or update) each user's SCRAM-SHA-512 credential from secrets/<user>.password,
    and every grant; both idempotent. Returns the number of ACLs."""
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialAlteration,
        UserScramCredentialUpsertion,
    )

    client = AdminClient(admin_config)
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(
            user,
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
            (secrets / f"{user}.password").read_text().strip().encode(),
        )
        for user in USERS
    ]
    for future in client.alter_user_scram_credentials(upserts).values():
        future.result()
    found = grants(app_id)
    wanted = _acl_bindings(found)
    for future in client.create_acls(wanted).values():  # type: ignore[arg-type]
        future.result()
    _revoke_others(client, wanted)
    return len(found)


def _revoke_others(client: Any, wanted: list[Any]) -> None:
    """Delete our users' ACLs that are no longer wanted (a topic the registry dropped, an
    older app id), so that `apply` leaves exactly `grants`."""
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    def key(b: Any) -> tuple[object, ...]:
        return (b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation)

    keep = {key(b) for b in wanted}
    stale = []
    for user in USERS:
        # None matches any name and host (the stubs say str; the client takes None).
        ours = AclBindingFilter(
            ResourceType.ANY,
            None,  # type: ignore[arg-type]
            ResourcePatternType.ANY,
            f"User:{user}",
            None,  # type: ignore[arg-type]
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        stale += [b for b in client.describe_acls(ours).result() if key(b) not in keep]
    if stale:
        exact = [
            AclBindingFilter(
                b.restype,
                b.name,
                b.resource_pattern_type,
                b.principal,
                b.host,
                b.operation,
                b.permission_type,
            )
            for b in stale
        ]
        for future in client.delete_acls(exact).values():
            future.result()
        print(f"revoked {len(stale)} ACLs no longer derived from the registry", file=sys.stderr)


def _admin_config(args: argparse.Namespace) -> dict[str, Any]:
    from services.connections import LIBRDKAFKA_LOG

    password = (Path(args.secrets) / f"{ADMIN}.password").read_text().strip()
    return {
        "bootstrap.servers": args.bootstrap,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": ADMIN,
        "sasl.password": password,
        "ssl.ca.location": args.ca_file,
        "logger": LIBRDKAFKA_LOG,
    }


def main(argv: Sequence[str] | None = None) -> int:
    from services.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m services.kafka_acls", description=__doc__)
    parser.add_argument("action", choices=("list", "apply"))
    parser.add_argument("--app-id", default=None, help="the workers' app id (O2C_APP_ID)")
    parser.add_argument("--bootstrap", help="the SASL_SSL listener, host:port")
    parser.add_argument("--ca-file", help="PEM of the CA that signed the broker's certificate")
    parser.add_argument("--secrets", help="folder of <user>.password files (admin's too)")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the broker")
    args = parser.parse_args(argv)
    app_id = args.app_id or get_settings().app_id
    if args.action == "list":
        from services.cli.output import table

        rows = [(g.principal, g.resource, g.name, g.pattern, g.operation) for g in grants(app_id)]
        print(table(("principal", "resource", "name", "pattern", "operation"), rows))
        return 0
    if not (args.bootstrap and args.ca_file and args.secrets):
        parser.error("apply needs --bootstrap, --ca-file and --secrets")
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + args.wait
    while True:  # a broker that has just started may not have its metadata yet
        try:
            count = apply(_admin_config(args), Path(args.secrets), app_id)
            break
        except KafkaException as exc:
            if time.monotonic() > deadline:
                print(f"kafka_acls: giving up after {args.wait:.0f}s: {exc}", file=sys.stderr)
                return 1
            time.sleep(1)
    print(f"{len(USERS)} users and {count} ACLs in place (app id {app_id})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
