"""Each RocksDB database of the worker's tables is bounded by the settings, not by faust's
defaults (2 GiB of block cache per table and partition)."""

from __future__ import annotations

from pathlib import Path

import faust
from faust.stores.rocksdb import Store as RocksDBStore

from services.settings import Settings
from services.worker.app import table_options


def test_tables_open_rocksdb_with_the_configured_memory_bounds(tmp_path: Path) -> None:
    settings = Settings(rocksdb_write_buffer_mb=4, rocksdb_block_cache_mb=12)
    app = faust.App("o2c-test-tables", store="rocksdb://", datadir=str(tmp_path))
    table = app.Table("ledgers", partitions=1, key_type=bytes, options=table_options(settings))

    store = table.data
    assert isinstance(store, RocksDBStore)
    opened = store.rocksdb_options
    assert opened.write_buffer_size == 4 * 1024 * 1024
    assert opened.max_write_buffer_number == 2
    assert opened.block_cache_size == 12 * 1024 * 1024
