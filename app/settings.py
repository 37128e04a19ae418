"""Application settings, read from the environment with the ``CROWDLAB_`` prefix."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of a Crowdlab instance; nothing is built at import time."""

    model_config = SettingsConfigDict(env_prefix="CROWDLAB_", env_file=None, extra="ignore")

    data_dir: Path = Path("./crowdlab-data")
    database_url: str | None = None
    media_url: str | None = None
    redis_url: str | None = None
    secret_key: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    # Threads per server process for request handlers that talk to the database. Few is
    # faster: more threads only queue on the GIL and on database locks (measured with
    # bench/labeling_load.py on 2 cores: 3 threads 282 round-trips/s, 8: 239, 40: 181).
    request_threads: int = Field(default=8, ge=1, le=200)

    # Database waits. Every wait is bounded so that a busy or unreachable database gives
    # a quick 503 "try again" instead of a request that hangs.
    # SQLite: how long a writer queues for the one write lock (imports commit in short
    # batches, so a writer normally gets it within a fraction of a second).
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    # PostgreSQL: connect, per-statement and pool-checkout limits; keepalives notice a
    # black-holed connection (no reset, no answer) within about ``db_tcp_user_timeout_ms``.
    db_connect_timeout_s: int = Field(default=5, ge=1)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    db_job_statement_timeout_ms: int = Field(default=600_000, ge=0)
    db_tcp_user_timeout_ms: int = Field(default=20_000, ge=0)
    db_pool_timeout_s: float = Field(default=5.0, gt=0)

    # Jobs
    jobs_immediate: bool = False
    jobs_in_process: bool = True
    worker_threads: int = 2

    # Uploads
    max_upload_bytes: int = 200 * 1024 * 1024
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_zip_entries: int = 20_000
    max_zip_ratio: int = 200
    upload_job_threshold: int = 200
    # Image URLs that the server fetches itself (prediction by URL, Custom Vision uploads)
    # may not point at loopback, private or link-local addresses unless this is set.
    allow_private_image_urls: bool = False

    # Money
    platform_fee_percent: float = Field(default=0.0, ge=0, le=100)
    min_reward_cents: int = 1

    # Security
    session_max_age: int = 14 * 24 * 3600
    argon2_time_cost: int = 2
    argon2_memory_cost: int = 19 * 1024

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'crowdlab.db').resolve()}"

    @property
    def resolved_media_url(self) -> str:
        """Where media files live: a local folder by default, any fsspec URL otherwise."""
        return self.media_url or str((self.data_dir / "media").resolve())

    @property
    def resolved_secret_key(self) -> str:
        """The signing key; generated once and kept in the data directory when unset."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key

    @property
    def models_dir(self) -> Path:
        """Where trained model checkpoints are written."""
        return (self.data_dir / "models").resolve()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cleared by tests with ``get_settings.cache_clear()``)."""
    return Settings()
