"""A store whose states are a head and one record per entry (credit's orders, suspense's
open items): a change writes the head and the changed entries only, and the same state
comes back from RocksDB, from a fresh process's database, or from the changelog's records
alone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import orjson

from schemas import events as ev
from schemas.codec import decode, encode
from services.domain import credit, suspense
from services.domain.outputs import output
from services.runtime.store import Codec, Memory, Store, StoreSpec
from services.worker.credit_processor import STORED_APART as CREDIT_APART
from services.worker.settlement_processors import SUSPENSE_APART

CUSTOMER = "cust-1"
MOMENT = datetime(2026, 11, 2, 9, tzinfo=UTC)
RULES = suspense.SuspenseRules()
SUSPENSE = StoreSpec("suspense", Codec(suspense.load_state, suspense.dump_state, SUSPENSE_APART))
CREDIT = StoreSpec("credit", Codec(credit.load_state, credit.dump_state, CREDIT_APART))


def balance(order: int, open_balance: str, cause: str) -> ev.BalanceChanged:
    data = ev.BalanceChangedData(
        order_id=f"ord-{order:05d}",
        customer_id=CUSTOMER,
        currency="EUR",
        receivable=Decimal("100.00"),
        paid=Decimal("100.00") - Decimal(open_balance),
        refunded=Decimal("0.00"),
        settled=Decimal("0.00"),
        open_balance=Decimal(open_balance),
        status="open" if open_balance != "0.00" else "paid",
        due_date=date(2026, 12, 1),
        channel="b2b",
    )
    day = ev.DayClosed(
        specversion="1.0",
        id=cause,
        source="test",
        type="o2c.day.closed.v1",
        time=MOMENT,
        data=ev.DayClosedData(date=MOMENT.date()),
    )
    event = output(ev.BalanceChanged, data, day, data.order_id)
    decoded = decode(encode(event))
    assert isinstance(decoded, ev.BalanceChanged)
    return decoded


def customer_with(items: int) -> suspense.Suspense:
    state = suspense.new_suspense(CUSTOMER)
    for n in range(items):
        state = suspense.apply(state, balance(n, "100.00", f"setup-{n}"), RULES)[0]
    return state


def store(spec: StoreSpec[suspense.Suspense], tmp_path: Path) -> Store[suspense.Suspense]:
    return Store(spec, tmp_path / spec.name / "0", Memory(1, 1))


def committed(s: Store[suspense.Suspense], key: bytes, state: suspense.Suspense) -> None:
    s.get(key)
    s.put(key, state)
    s.changes()
    s.checkpoint(1)


def test_a_new_state_is_written_as_its_head_and_one_record_per_open_item(
    tmp_path: Path,
) -> None:
    s = store(SUSPENSE, tmp_path)
    assert s.get(b"cust-1") is None
    s.put(b"cust-1", customer_with(3))

    records = dict(s.changes())

    assert set(records) == {
        b"cust-1",
        b"cust-1\x00ord-00000",
        b"cust-1\x00ord-00001",
        b"cust-1\x00ord-00002",
    }
    assert suspense.stored_apart(records[b"cust-1"] or b"")


def test_changing_one_open_item_of_many_writes_the_head_and_that_item_only(
    tmp_path: Path,
) -> None:
    s = store(SUSPENSE, tmp_path)
    state = customer_with(200)
    committed(s, b"cust-1", state)

    before = s.get(b"cust-1")
    assert before is not None
    paid = suspense.apply(before, balance(7, "0.00", "paid-7"), RULES)[0]
    part = suspense.apply(paid, balance(9, "40.00", "part-9"), RULES)[0]
    s.put(b"cust-1", part)

    records = dict(s.changes())
    assert set(records) == {b"cust-1", b"cust-1\x00ord-00007", b"cust-1\x00ord-00009"}
    assert records[b"cust-1\x00ord-00007"] is None  # paid: no longer open
    s.checkpoint(2)
    s.close()

    again = store(SUSPENSE, tmp_path)
    loaded = again.get(b"cust-1")
    assert loaded == part
    assert loaded is not None
    assert len(loaded.items) == 199


def test_the_changelogs_records_alone_rebuild_the_same_state(tmp_path: Path) -> None:
    s = store(SUSPENSE, tmp_path / "first")
    changelog: list[tuple[bytes, bytes | None]] = []
    state = suspense.new_suspense(CUSTOMER)
    for n, (order, amount) in enumerate([(1, "100.00"), (2, "100.00"), (1, "30.00"), (2, "0.00")]):
        state = suspense.apply(state, balance(order, amount, f"e{n}"), RULES)[0]
        s.get(b"cust-1")
        s.put(b"cust-1", state)
        changelog += s.changes()
        s.checkpoint(n + 1)

    restored = store(SUSPENSE, tmp_path / "second")
    restored.restore(changelog, next_offset=len(changelog))

    assert restored.get(b"cust-1") == state
    assert [i.order_id for i in state.items.sorted_values()] == ["ord-00001"]


def test_a_state_stored_whole_by_the_previous_version_is_written_apart_at_its_first_change(
    tmp_path: Path,
) -> None:
    old = customer_with(3)
    s = store(SUSPENSE, tmp_path)
    s.restore([(b"cust-1", suspense.dump_state(old))], next_offset=1)
    assert s.get(b"cust-1") == old

    changed = suspense.apply(old, balance(1, "10.00", "part-1"), RULES)[0]
    s.put(b"cust-1", changed)
    records = dict(s.changes())
    s.checkpoint(2)

    assert set(records) == {
        b"cust-1",
        b"cust-1\x00ord-00000",
        b"cust-1\x00ord-00001",
        b"cust-1\x00ord-00002",
    }
    s.close()
    assert store(SUSPENSE, tmp_path).get(b"cust-1") == changed


def test_scan_gives_heads_only(tmp_path: Path) -> None:
    s = store(SUSPENSE, tmp_path)
    committed(s, b"cust-1", customer_with(3))
    s.put_raw(b"\x00clock/0", b"2026-11-02")

    keys = [key for key, _state, _raw in s.scan()]

    assert sorted(keys) == [b"\x00clock/0", b"cust-1"]


def test_credit_orders_are_stored_apart_and_read_back_with_their_exposure(
    tmp_path: Path,
) -> None:
    s: Store[credit.CreditState] = Store(CREDIT, tmp_path / "credit" / "0", Memory(1, 1))
    upserted = {
        "specversion": "1.0",
        "id": "customer-1",
        "source": "test",
        "type": "o2c.customer.upserted.v1",
        "time": MOMENT.isoformat(),
        "data": {
            "customer_id": CUSTOMER,
            "name": "Kunde GmbH",
            "credit_limit": "50000.00",
            "currency": "EUR",
        },
    }
    state = credit.apply(credit.new_state(CUSTOMER), decode(orjson.dumps(upserted)))[0]
    for n in range(100):
        state = credit.apply(state, balance(n, "100.00", f"setup-{n}"))[0]
    s.put(b"cust-1", state)
    s.changes()
    s.checkpoint(1)

    before = s.get(b"cust-1")
    assert before is not None
    after = credit.apply(before, balance(5, "12.50", "part-5"))[0]
    s.put(b"cust-1", after)
    records = dict(s.changes())
    s.checkpoint(2)
    s.close()

    assert set(records) == {b"cust-1", b"cust-1\x00ord-00005"}
    loaded = Store(CREDIT, tmp_path / "credit" / "0", Memory(1, 1)).get(b"cust-1")
    assert loaded == after
    assert loaded is not None
    assert loaded.running == after.running == Decimal("9912.50")
