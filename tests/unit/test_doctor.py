"""`o2c doctor`'s verdicts: the registry's topics against the broker's, lag, exit status."""

from __future__ import annotations

from schemas.topics import ALL_TOPICS, ORDERS
from services.cli.doctor import LAG_TO_FIX, Check, exit_status, lag_check, topic_checks

AS_DECLARED = {t.name: t.partitions for t in ALL_TOPICS}


def test_topics_as_the_registry_declares_them_are_ok() -> None:
    assert [c.status for c in topic_checks(AS_DECLARED)] == ["ok"]


def test_a_missing_topic_is_named_with_the_command_that_creates_it() -> None:
    (check,) = topic_checks({k: v for k, v in AS_DECLARED.items() if k != ORDERS.name})
    assert check.status == "fix"
    assert ORDERS.name in check.detail
    assert "o2c topics create" in check.fix


def test_a_topic_with_another_partition_count_than_the_registry_needs_fixing() -> None:
    (check,) = topic_checks(AS_DECLARED | {ORDERS.name: ORDERS.partitions + 1})
    assert check.status == "fix"
    assert f"{ORDERS.name} has {ORDERS.partitions + 1} (registry: {ORDERS.partitions})" in (
        check.detail
    )


def test_lag_needs_fixing_only_when_nothing_was_committed_or_far_behind() -> None:
    assert lag_check("worker lag", 0, "`o2c worker`").status == "ok"
    assert lag_check("worker lag", LAG_TO_FIX, "`o2c worker`").status == "ok"
    assert lag_check("worker lag", LAG_TO_FIX + 1, "`o2c worker`").status == "fix"
    never = lag_check("worker lag", None, "`o2c worker`")
    assert never.status == "fix"
    assert "o2c worker" in never.fix


def test_exit_status_is_2_for_a_missing_service_then_1_for_anything_to_fix_else_0() -> None:
    ok = Check("kafka", "ok", "")
    fix = Check("topics", "fix", "")
    away = Check("postgresql", "unreachable", "")
    skipped = Check("projections lag", "skipped", "")
    assert exit_status([ok, skipped]) == 0
    assert exit_status([ok, fix]) == 1
    assert exit_status([fix, away]) == 2
