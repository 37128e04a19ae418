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

    # Web server processes ``crowdlab serve`` runs on one port (the kernel spreads
    # connections over them, SO_REUSEPORT); 0: one per CPU core, at most 4. Each keeps its own
    # login throttle counters unless ``CROWDLAB_REDIS_URL`` is set.
    web_processes: int = Field(default=0, ge=0, le=64)

    # Jobs
    jobs_immediate: bool = False
    jobs_in_process: bool = True
    # ``crowdlab serve`` runs those jobs in a child worker process of its own (true), so an
    # upload or a training never competes with the pages for the server's interpreter; false
    # runs them on threads inside the server process
    jobs_child_process: bool = True
    # that child's CPU niceness (0-19; higher yields more CPU to the web server). The
    # scheduler weighs threads, and an import plus a training keep several busy (the torch
    # threads among them), so 19, the lowest priority, is what leaves pages their cores
    worker_nice: int = Field(default=19, ge=0, le=19)
    worker_threads: int = 2
    # A running job renews its heartbeat every ``job_heartbeat_seconds`` (default: a sixth
    # of the lease); one not heard from for ``job_lease_seconds`` is retried up to
    # ``job_max_attempts`` attempts in all, then failed.
    job_lease_seconds: float = Field(default=90.0, gt=0)
    job_heartbeat_seconds: float | None = Field(default=None, gt=0)
    job_max_attempts: int = Field(default=3, ge=1, le=20)

    # Request bodies: every route gets ``max_request_bytes``, JSON API routes (task
    # batches) ``max_api_request_bytes``, and only the upload routes (images, TSV, ZIP,
    # Custom Vision images, prediction) ``max_upload_bytes``; see app/body_limits.py.
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_api_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)

    # Uploads
    max_upload_bytes: int = 200 * 1024 * 1024
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_zip_entries: int = 20_000
    max_zip_ratio: int = 200
    upload_job_threshold: int = 200
    # Image URLs in a task TSV are checked by the upload job (a GET that reads the first
    # bytes), this many at a time, each within the timeout; rows whose URL does not lead
    # to an image are reported by row (and refused, or skipped when the requester chose).
    check_image_urls: bool = True
    url_check_concurrency: int = Field(default=8, ge=1, le=64)
    url_check_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Image URLs that the server fetches itself (prediction by URL, Custom Vision uploads)
    # may not point at loopback, private or link-local addresses unless this is set.
    allow_private_image_urls: bool = False
    # Webhook URLs get the same guard, unless the operator allows private receivers.
    allow_private_webhook_urls: bool = False
    webhook_max_attempts: int = 8
    webhook_backoff_seconds: float = 30.0

    # The Train page lists timm's tiny test networks (test_resnet, …) only when this is on
    # (tests and smoke runs); they are accepted by name either way.
    show_test_architectures: bool = False

    # Money
    platform_fee_percent: float = Field(default=0.0, ge=0, le=100)
    min_reward_cents: int = 1

    # Accounts: the languages (comma-separated ISO codes) a labeler made with
    # ``crowdlab create-user`` speaks unless ``--languages`` says otherwise; pools with a
    # Languages filter (toloka-kit's ``Languages.in_('EN')``) only reach labelers who have it.
    default_languages: str = "EN"

    # Security
    session_max_age: int = 14 * 24 * 3600
    # The session cookie's ``Secure`` flag (also on whenever base_url is https).
    cookie_secure: bool = False
    # Content-Security-Policy frame-ancestors, X-Frame-Options, nosniff, Referrer-Policy
    # on every response; HSTS only on requests that arrived over https (0 turns it off).
    security_headers: bool = True
    hsts_max_age: int = Field(default=365 * 24 * 3600, ge=0)
    min_password_length: int = Field(default=10, ge=8)
    # zxcvbn's 0-4 guessability score a new password must reach (0 = length rule only).
    min_password_score: int = Field(default=2, ge=0, le=4)
    # Failed log-ins allowed per window (``limits`` syntax), per e-mail and per client IP;
    # sign-ups per client IP. Counted in process memory, or in Redis when redis_url is set.
    login_limit_per_email: str = "10/15 minutes"
    login_limit_per_ip: str = "50/15 minutes"
    signup_limit_per_ip: str = "20/hour"
    argon2_time_cost: int = 2
    argon2_memory_cost: int = 19 * 1024

    @property
    def default_language_list(self) -> list[str]:
        """``default_languages`` as upper-case codes."""
        return [c.strip().upper() for c in self.default_languages.split(",") if c.strip()]

    @property
    def resolved_job_heartbeat_seconds(self) -> float:
        """How often a running job renews its heartbeat (well inside the lease)."""
        return self.job_heartbeat_seconds or max(0.05, self.job_lease_seconds / 6)

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
