"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from depot.database import models
from depot.database.migrate import upgrade


def test_upgrade_head_matches_the_models(database_url):
    upgrade(database_url)
    engine = create_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), models.Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent(database_url):
    upgrade(database_url)
    upgrade(database_url)
    engine = create_engine(database_url)
    assert "host_results" in inspect(engine).get_table_names()
    engine.dispose()
