"""A task hands its core the records of its inputs in event-time order (time, topic rank,
offset), and waits for an empty input only while it may still hold something older."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.base import CloudEvent
from services.runtime.edge import RawMessage
from services.runtime.processor import Outputs, ProcessorSpec, TaskView
from services.runtime.tasks import Item, TaskState
from tests.factories import order_placed

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
ORDERS, PAYMENTS = ("o2c.orders", 3), ("o2c.payments", 3)


def _task() -> TaskState:
    spec: ProcessorSpec[object] = ProcessorSpec("t", (), None, lambda: None)  # type: ignore[arg-type, return-value]
    task = TaskState(spec, 3, TaskView(3, None, Outputs("t", "test", None)))  # type: ignore[arg-type]
    task.add_input(ORDERS)
    task.add_input(PAYMENTS)
    return task


def _item(where: tuple[str, int], offset: int, minutes: int) -> Item:
    event: CloudEvent = order_placed("ORD-1", "10.00").model_copy(
        update={"time": T0 + timedelta(minutes=minutes)}
    )
    message = RawMessage(where[0], where[1], offset, b"k", b"{}", T0)
    return Item(where, offset, message, event)


def _drain(task: TaskState, caught_up: bool | None = True) -> list[tuple[str, int]]:
    taken = []
    while (buffer := task.next_buffer(0.0, lambda _w: caught_up, 0.02, 2.0)) is not None:
        item = buffer.popleft()
        taken.append((item.where[0], item.offset))
    return taken


def test_records_of_two_topics_come_in_event_time_order_not_arrival_order() -> None:
    task = _task()
    task.buffers[PAYMENTS].extend([_item(PAYMENTS, 0, 60), _item(PAYMENTS, 1, 90)])
    task.buffers[ORDERS].extend([_item(ORDERS, 7, 0), _item(ORDERS, 8, 120)])

    assert _drain(task) == [
        ("o2c.orders", 7),
        ("o2c.payments", 0),
        ("o2c.payments", 1),
        ("o2c.orders", 8),
    ]


def test_a_tie_in_event_time_goes_to_the_earlier_input_in_the_processors_order() -> None:
    task = _task()
    task.buffers[PAYMENTS].append(_item(PAYMENTS, 0, 5))
    task.buffers[ORDERS].append(_item(ORDERS, 9, 5))

    assert _drain(task) == [("o2c.orders", 9), ("o2c.payments", 0)]


def test_one_partition_keeps_its_offset_order_even_when_its_times_go_back() -> None:
    task = _task()
    task.buffers[ORDERS].extend([_item(ORDERS, 0, 30), _item(ORDERS, 1, 10)])

    assert _drain(task) == [("o2c.orders", 0), ("o2c.orders", 1)]


def test_an_empty_input_that_is_caught_up_does_not_hold_the_task_back() -> None:
    task = _task()
    task.buffers[ORDERS].append(_item(ORDERS, 0, 30))

    assert task.next_buffer(0.0, lambda _w: True, 0.02, 2.0) is task.buffers[ORDERS]


def test_an_empty_input_with_more_on_the_broker_holds_the_task_until_max_idle() -> None:
    task = _task()
    task.buffers[ORDERS].append(_item(ORDERS, 0, 30))
    behind = lambda _w: False  # noqa: E731

    assert task.next_buffer(0.000, behind, 0.02, 2.0) is None
    assert task.next_buffer(0.019, behind, 0.02, 2.0) is None
    assert task.next_buffer(0.021, behind, 0.02, 2.0) is task.buffers[ORDERS]


def test_an_input_that_never_reported_its_end_holds_the_task_for_the_longer_bound() -> None:
    task = _task()
    task.buffers[ORDERS].append(_item(ORDERS, 0, 30))
    unknown = lambda _w: None  # noqa: E731

    assert task.next_buffer(0.0, unknown, 0.02, 2.0) is None
    assert task.next_buffer(1.0, unknown, 0.02, 2.0) is None
    assert task.next_buffer(2.0, unknown, 0.02, 2.0) is task.buffers[ORDERS]


def test_the_first_unhandled_offset_of_an_input_is_its_buffers_head() -> None:
    task = _task()
    task.buffers[ORDERS].extend([_item(ORDERS, 4, 0), _item(ORDERS, 5, 1)])
    task.buffers[ORDERS].popleft()

    assert task.position(ORDERS) == 5
    assert task.position(PAYMENTS) is None
