"""The Alembic migrations go up and down cleanly on a real PostgreSQL (a release can be rolled back)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from galaxy_tasks.adapters.postgres.migrate import downgrade, upgrade
from tests.support.services import drop_database, fresh_database_url, require_postgres

pytestmark = pytest.mark.integration


def tables(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        inspector = inspect(engine)
        return {f"{schema}.{t}" for schema in ("rtmanager", "gamemaster") for t in inspector.get_table_names(schema)}
    finally:
        engine.dispose()


def test_every_migration_downgrades_to_the_previous_schema_and_upgrades_again() -> None:
    require_postgres()
    url = fresh_database_url()
    try:
        upgrade(url)
        at_head = tables(url)
        assert {"rtmanager.game_jobs", "gamemaster.runtime_records"} <= at_head
        downgrade(url, "0005")
        assert "rtmanager.game_jobs" not in tables(url)
        downgrade(url, "base")
        assert tables(url) == set()
        upgrade(url)
        assert tables(url) == at_head
    finally:
        drop_database(url)
