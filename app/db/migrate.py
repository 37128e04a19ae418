"""Run Alembic migrations from code (``crowdlab db upgrade`` and ``crowdlab serve``)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from app.settings import REPO_ROOT, get_settings


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at our migrations and the given (or configured) database."""
    config = Config()
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url or get_settings().resolved_database_url)
    config.set_main_option("path_separator", "os")
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Upgrade the database to ``revision``."""
    command.upgrade(alembic_config(url), revision)
