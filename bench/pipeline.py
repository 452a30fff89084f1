"""Ledger throughput and latency through the real broker, beside a same-run baseline.

- baseline: a plain confluent-kafka consumer reading the same input partitions and parsing
  every value with orjson — the ceiling for any consumer on this machine;
- throughput: a fresh `o2c worker` over events already on the broker, timed from its first
  output to its last (Kafka timestamps of the outputs);
- latency: the worker caught up, events offered at a fixed rate with `time` = the moment
  of sending; latency = output's Kafka timestamp − input's event time;
- memory per order: in the throughput run, the worker's resident memory when half its input
  is left and when none is, and its RocksDB files at the end. The growth over the second
  half is what each further order costs once the fixed costs (runtime, bounded caches, the
  parsed-ledger memo) are paid.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from bench.processes import Process
from bench.procfs import disk_bytes
from schemas.topics import ALL_TOPICS, BALANCES_BY_CUSTOMER, MATCHES, MISMATCHES, ORDERS, PAYMENTS
from services.kafka_io import commit_offsets, end_offsets, ensure_topics, lag, producer
from services.worker.processors import WORKER_INPUTS

INPUTS = [t.name for t in WORKER_INPUTS]
# Far from the business days anything else closes: no time-driven rule fires here.
T0 = datetime(2032, 1, 5, 9, 0, tzinfo=UTC)


def _event(kind: str, data: dict[str, Any], at: datetime) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "bench",
            "type": f"o2c.{kind}.v1",
            "time": at.isoformat(),
            "data": data,
        }
    )


def order_stream(orders: int, run: str, at: datetime = T0) -> Iterator[tuple[str, str, bytes]]:
    """(topic, key, value) for `orders` orders: placed then paid; every 10th overpaid."""
    for n in range(orders):
        order_id = f"B{run}-{n}"
        when = at + timedelta(milliseconds=n)
        yield (
            ORDERS.name,
            order_id,
            _event(
                "order.placed",
                {
                    "order_id": order_id,
                    "customer_id": f"C{n % 500}",
                    "channel": "web",
                    "currency": "CNY",
                    "total_amount": "100.00",
                    "placed_at": when.isoformat(),
                },
                when,
            ),
        )
        amount = "120.00" if n % 10 == 0 else "100.00"
        yield (
            PAYMENTS.name,
            order_id,
            _event(
                "payment.captured",
                {
                    "payment_id": f"P{run}-{n}",
                    "order_id": order_id,
                    "method": "voucher",
                    "amount": amount,
                    "currency": "CNY",
                    "captured_at": when.isoformat(),
                },
                when,
            ),
        )


def _publish(bootstrap: str, messages: Iterator[tuple[str, str, bytes]]) -> int:
    out = producer(bootstrap, **{"linger.ms": 20, "batch.size": 1_000_000})
    count = 0
    for topic, key, value in messages:
        while True:
            try:
                out.produce(topic, value=value, key=key)
                break
            except BufferError:
                out.poll(0.1)
        count += 1
    out.flush(120)
    return count


def baseline_consumer(bootstrap: str, start: list[TopicPartition], expected: int) -> dict[str, Any]:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"o2c-bench-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52428800,
        }
    )
    c.assign(start)
    seen = 0
    started = time.perf_counter()
    try:
        while seen < expected and time.perf_counter() - started < 120:
            for msg in c.consume(10_000, timeout=0.5):
                if msg.error():
                    continue
                orjson.loads(msg.value() or b"{}")
                seen += 1
    finally:
        c.close()
    seconds = time.perf_counter() - started
    return {
        "events": seen,
        "seconds": round(seconds, 3),
        "events_per_second": round(seen / seconds),
    }


class Worker:
    """One `o2c worker` on its own application id and state, until the bench stops it."""

    def __init__(self, bootstrap: str, app_id: str, workdir: Path, **settings: str) -> None:
        env = dict(
            os.environ,
            O2C_KAFKA_BOOTSTRAP=bootstrap,
            O2C_APP_ID=app_id,
            O2C_STATE_DIR=str(workdir / "state"),
            O2C_METRICS_PORT="0",
            O2C_LOG_LEVEL="info",
            O2C_SOURCE=app_id,
            **settings,
        )
        self.log = workdir / "worker.log"
        self.state_dir = workdir / "state"
        self.app_id = app_id
        self.bootstrap = bootstrap
        self.process = Process(
            "worker",
            [sys.executable, "-m", "services.cli.main", "worker"],
            env,
            workdir / "worker.log",
        )

    def wait_caught_up(self, timeout: float = 600) -> None:
        self.wait_lag_at_most(0, timeout)

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the worker holds its partitions (it says "Worker ready")."""
        deadline = time.monotonic() + timeout
        while b"Worker ready" not in (self.log.read_bytes() if self.log.exists() else b""):
            self.process.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready after {timeout}s; see {self.log}")
            time.sleep(0.2)

    def wait_lag_at_most(self, left: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while lag(self.bootstrap, self.app_id, INPUTS) > left:
            self.process.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker not down to {left} behind after {timeout}s")
            time.sleep(0.5)

    def resident_kib(self) -> int:
        return self.process.sample()

    def stop(self) -> None:
        self.process.stop()


def _outputs(
    bootstrap: str, since: list[TopicPartition], source: str, idle: float = 3.0
) -> list[tuple[int, dict[str, Any]]]:
    """(Kafka timestamp in ms, document) of outputs written by `source` since `since`."""
    c = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "o2c-bench", "enable.auto.commit": False}
    )
    c.assign(since)
    found = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle:
            for msg in c.consume(10_000, timeout=0.3):
                if msg.error():
                    continue
                last = time.monotonic()
                value = msg.value() or b""
                if f'"source":"{source}"'.encode() not in value:
                    continue
                found.append((msg.timestamp()[1], orjson.loads(value)))
    finally:
        c.close()
    return found


def ledger_throughput(bootstrap: str, orders: int) -> dict[str, Any]:
    ensure_topics(bootstrap, ALL_TOPICS)
    run = uuid.uuid4().hex[:6]
    start = end_offsets(bootstrap, INPUTS)
    published = _publish(bootstrap, order_stream(orders, run))
    baseline = baseline_consumer(
        bootstrap, [tp for tp in start if tp.topic in (ORDERS.name, PAYMENTS.name)], published
    )
    app_id = f"bench-{run}"
    commit_offsets(bootstrap, app_id, start)
    since = end_offsets(bootstrap, [MATCHES.name, MISMATCHES.name])
    with tempfile.TemporaryDirectory() as tmp:
        worker = Worker(bootstrap, app_id, Path(tmp))
        started = time.monotonic()
        try:
            worker.wait_lag_at_most(published // 2)
            half_kib = worker.resident_kib()
            worker.wait_caught_up()
            end_kib = worker.resident_kib()
            state = disk_bytes(worker.state_dir)
        finally:
            worker.stop()
        wall = time.monotonic() - started
    outputs = _outputs(bootstrap, since, app_id)
    stamps = [ts for ts, _ in outputs]
    busy = (max(stamps) - min(stamps)) / 1000 if stamps else float("nan")
    return {
        "input_events": published,
        "outputs": len(outputs),
        "processing_seconds": round(busy, 3),
        "events_per_second": round(published / busy) if busy else None,
        "wall_seconds_including_startup": round(wall, 1),
        # a restart re-reads a batch: its time is in the figures, and it should be rare
        "worker_restarts": worker.process.restarts,
        "baseline": baseline,
        "memory": {
            "orders": orders,
            "worker_rss_mib_half_way": half_kib // 1024,
            "worker_rss_mib_at_end": end_kib // 1024,
            # the second half of the input holds about half of the orders
            "rss_growth_bytes_per_order": round((end_kib - half_kib) * 1024 / (orders / 2)),
            "rocksdb_bytes_per_order": round(state / orders),
        },
    }


def ledger_latency(
    bootstrap: str, rates: list[int], seconds: float, flood: int = 0, **worker_settings: str
) -> list[dict[str, Any]]:
    """Latency of outputs at fixed offered rates, one worker already caught up: the moment
    a separate consumer (read_committed) receives an output, minus the moment its input
    was handed to the producer. With `flood`, that many balance.changed copies wait for
    the credit and suspense processors when the worker starts."""
    run = uuid.uuid4().hex[:6]
    app_id = f"bench-lat-{run}"
    commit_offsets(bootstrap, app_id, end_offsets(bootstrap, INPUTS))
    if flood:
        flood_balances(bootstrap, flood)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        worker = Worker(bootstrap, app_id, Path(tmp), **worker_settings)
        try:
            worker.wait_ready()
            for rate in rates:
                since = end_offsets(bootstrap, [MATCHES.name, MISMATCHES.name])
                with Receiver(bootstrap, since, app_id) as receiver:
                    sent = _offer(bootstrap, rate, seconds, f"{run}-{rate}")
                    worker.wait_caught_up()
                    received = receiver.settle()
                latencies = [at - sent[cause] for cause, at in received if cause in sent]
                results.append(_percentiles(rate, len(sent), latencies))
        finally:
            worker.stop()
    return results


class Receiver:
    """A consumer on its own thread noting when each output of `source` arrives:
    (causationid, epoch seconds of receipt)."""

    def __init__(self, bootstrap: str, since: list[TopicPartition], source: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "o2c-bench-receiver",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 5,
            }
        )
        self._consumer.assign(since)
        self._marker = f'"source":"{source}"'.encode()
        self._received: list[tuple[str, float]] = []
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        time.sleep(0.5)  # assigned and fetching before the first input is sent
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            # consume(n, timeout) waits for n records or the timeout, which would count up
            # to the timeout into every latency: poll for one, then take what else is there.
            first = self._consumer.poll(0.05)
            if first is None:
                continue
            at = time.time()
            for msg in [first, *self._consumer.consume(1000, timeout=0)]:
                if msg.error():
                    continue
                self._last = time.monotonic()
                value = msg.value() or b""
                if self._marker in value:
                    cause = orjson.loads(value).get("causationid")
                    if cause:
                        self._received.append((cause, at))

    def settle(self, idle: float = 2.0) -> list[tuple[str, float]]:
        """Everything received, once nothing has arrived for `idle` seconds."""
        while time.monotonic() - self._last < idle:
            time.sleep(0.1)
        return list(self._received)


def flood_balances(bootstrap: str, copies: int, customers: int = 500) -> int:
    """`copies` balance.changed copies on o2c.internal.balances-by-customer, as a backlog of
    the credit and suspense processors (orders of `customers` customers, 100 each at the
    default), published before a latency run: the ledger's latency must not wait on them."""
    run = uuid.uuid4().hex[:6]
    messages = (
        (
            BALANCES_BY_CUSTOMER.name,
            f"F{run}-C{n % customers}",
            _event(
                "balance.changed",
                {
                    "order_id": f"F{run}-{n}",
                    "customer_id": f"F{run}-C{n % customers}",
                    "currency": "CNY",
                    "receivable": "100.00",
                    "paid": "0.00",
                    "refunded": "0.00",
                    "settled": "0.00",
                    "open_balance": "100.00",
                    "status": "open",
                },
                T0 + timedelta(milliseconds=n),
            ),
        )
        for n in range(copies)
    )
    return _publish(bootstrap, messages)


def _offer(bootstrap: str, rate: int, seconds: float, run: str) -> dict[str, float]:
    """Publish `rate` events per second for `seconds`; event id -> when it was handed to
    the producer (epoch s)."""
    out: Producer = producer(bootstrap, **{"linger.ms": 0})
    sent: dict[str, float] = {}
    total = int(rate * seconds)
    started = time.perf_counter()
    n = 0
    while n < total:
        due = started + n / rate
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        at = datetime.now(UTC)
        topic, key, value = _one(run, n, at)
        sent[orjson.loads(value)["id"]] = time.time()
        out.produce(topic, value=value, key=key)
        out.poll(0)
        n += 1
    out.flush(60)
    return sent


def _one(run: str, n: int, at: datetime) -> tuple[str, str, bytes]:
    order_id = f"L{run}-{n // 2}"
    if n % 2 == 0:
        return (
            ORDERS.name,
            order_id,
            _event(
                "order.placed",
                {
                    "order_id": order_id,
                    "customer_id": "C1",
                    "channel": "web",
                    "currency": "CNY",
                    "total_amount": "10.00",
                    "placed_at": at.isoformat(),
                },
                at,
            ),
        )
    return (
        PAYMENTS.name,
        order_id,
        _event(
            "payment.captured",
            {
                "payment_id": f"P{order_id}",
                "order_id": order_id,
                "method": "voucher",
                "amount": "10.00",
                "currency": "CNY",
                "captured_at": at.isoformat(),
            },
            at,
        ),
    )


def _percentiles(rate: int, sent: int, latencies: list[float]) -> dict[str, Any]:
    if len(latencies) < 2:
        return {"offered_rate": rate, "events": sent, "outputs": len(latencies)}
    q = statistics.quantiles(latencies, n=100)
    return {
        "offered_rate": rate,
        "events": sent,
        "outputs": len(latencies),
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }
