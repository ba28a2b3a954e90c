"""Alembic, configured from the settings (no alembic.ini to find): `depot migrate` runs upgrade()."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from depot.database.core import ensure_sqlite_directory

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    ensure_sqlite_directory(url)
    command.upgrade(alembic_config(url), revision)
