"""All runtime configuration, read once from O2C_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Defaults match deploy/local, so a fresh checkout needs no configuration."""

    model_config = SettingsConfigDict(env_prefix="O2C_", frozen=True)

    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: str = "postgresql://o2c:o2c@127.0.0.1:5432/o2c"
    # Faust application id: consumer group and prefix of its internal topics.
    app_id: str = "o2c-matcher"
    metrics_port: int = 9108
    # Faust's own web server (health, table views); 0 turns it off.
    web_port: int = 0
    state_dir: Path = Path(".o2c-state")
    table_store: str = "rocksdb://"
    # Where a new application id starts reading its inputs. The log is the truth, so a new
    # deployment starts at offset 0; tests use "latest" to see only their own events.
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    topic_partitions: int = 12
    log_level: str = "info"
    # CloudEvents `source` of everything o2c-matcher writes.
    source: str = "o2c-matcher"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
