from __future__ import annotations

from typing import Any

from services.summary import Summary


def _balance(output_id: str, order_id: str, status: str) -> dict[str, Any]:
    return {"id": output_id, "type": "o2c.balance.changed.v1",
            "data": {"order_id": order_id, "status": status}}  # fmt: skip


def test_latest_status_of_each_order_decides_whether_it_is_matched() -> None:
    summary = Summary()
    summary.add_output(_balance("1", "A", "partially_paid"))
    summary.add_output(_balance("2", "A", "paid"))
    summary.add_output(_balance("3", "B", "overpaid"))
    headers, values = summary.order_row()
    row = dict(zip(headers, values, strict=True))
    assert row["orders"] == 2
    assert row["matched"] == 1
    assert row["overpaid"] == 1
    assert row["match rate"] == "50.0%"


def test_redelivered_output_is_counted_once() -> None:
    summary = Summary()
    detected = {"id": "d1", "type": "o2c.mismatch.detected.v1",
                "data": {"mismatch_id": "m1", "reason": "OVERPAID", "order_id": "A"}}  # fmt: skip
    summary.add_output(detected)
    summary.add_output(detected)
    assert summary.reason_rows() == [("OVERPAID", 1, 0), ("total", 1, 0)]


def test_resolved_mismatch_leaves_the_open_column() -> None:
    summary = Summary()
    summary.add_output({"id": "d1", "type": "o2c.mismatch.detected.v1",
                        "data": {"mismatch_id": "m1", "reason": "OVERPAID"}})  # fmt: skip
    summary.add_output({"id": "r1", "type": "o2c.mismatch.resolved.v1",
                        "data": {"mismatch_id": "m1"}})  # fmt: skip
    assert summary.reason_rows() == [("OVERPAID", 0, 1), ("total", 0, 1)]


def test_orders_outside_the_file_are_left_out() -> None:
    summary = Summary(only_orders={"A"})
    summary.add_output(_balance("1", "A", "paid"))
    summary.add_output(_balance("2", "Z", "paid"))
    summary.add_dead_letter("Z")
    _, values = summary.order_row()
    assert values[0] == 1
    assert values[-1] == 0
