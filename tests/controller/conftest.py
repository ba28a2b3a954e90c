"""Databases for the controller's tests: every storage and API test runs on SQLite and on the
PostgreSQL server at 127.0.0.1:5432 (a fresh database per test, dropped afterwards)."""

import os
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

PG_ADMIN_URL = os.environ.get("DEPOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_available():
    try:
        with create_engine(PG_ADMIN_URL).connect() as c:
            c.execute(text("select 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means: no server to test against
        return False


@contextmanager
def postgres_database(prefix: str = "depot_test"):
    """The URL of a fresh database on the PostgreSQL server, dropped afterwards (skipped when there
    is no server, except under CI, where that fails)."""
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'depot.db'}"
        return
    with postgres_database() as url:
        yield url


# --- the API, on each database ---------------------------------------------------------------------

INVENTORY = """\
all:
  children:
    web:
      hosts:
        web1: {os_family: Debian, site: lan, services: [nginx, php]}
        web2: {os_family: RedHat, site: lan, services: [nginx]}
    db:
      hosts:
        db1: {os_family: Debian, site: dmz, db_engine: postgres}
    linux:
      children:
        web:
        db:
    empty: {}
  hosts:
    lone: {os_family: Windows}
"""


@pytest.fixture
def inventory(tmp_path):
    """A small static YAML inventory: groups web (web1, web2), db (db1), linux (web + db), an empty
    group, and an ungrouped host; host vars for dynamic filters."""
    path = tmp_path / "inventory.yml"
    path.write_text(INVENTORY)
    return path


@pytest.fixture
def settings(tmp_path, database_url):
    from depot.config import Settings
    from depot.database import migrate

    migrate.upgrade(database_url)
    return Settings(data_dir=tmp_path / "data", database_url=database_url, max_upload_bytes=64 * 1024)


@pytest.fixture
def app(settings):
    from depot.api import create_app

    return create_app(settings)


@pytest.fixture
def client(app):
    """The API as an admin (tests of roles make clients of their own: tests/controller/auth.py)."""
    from fastapi.testclient import TestClient

    from tests.controller.auth import bearer

    with TestClient(app, headers=bearer(app)) as c:
        yield c


@pytest.fixture
def table_counts(app):
    """A function returning {table: row count} of every table, to show a request wrote nothing."""
    from sqlalchemy import func, select

    from depot.database import models

    def counts():
        with app.state.engine.connect() as connection:
            return {name: connection.scalar(select(func.count()).select_from(table))
                    for name, table in models.Base.metadata.tables.items()}

    return counts


@pytest.fixture
def sessions(database_url):
    """A sessionmaker on a migrated database (SQLite or PostgreSQL, as ``database_url``)."""
    from depot.database.core import make_engine, make_sessionmaker
    from depot.database.migrate import upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()
