"""The Alembic migrations go up and down cleanly on a real PostgreSQL (a release can be rolled back)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from galaxy_tasks.adapters.postgres.migrate import downgrade, upgrade
from galaxy_tasks.testing.services import drop_database, fresh_database_url, require_postgres

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


def test_rows_waiting_in_an_outbox_at_the_identity_migration_are_chained_in_order_and_headed() -> None:
    require_postgres()
    url = fresh_database_url()
    try:
        upgrade(url, "0008")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO rtmanager.game_jobs (game_id, result_seq) VALUES ('g1', 3), ('g2', 0)"))
            conn.execute(
                text(
                    "INSERT INTO rtmanager.job_result_outbox (game_id, seq, fields) "
                    "VALUES ('g1', 3, '{}'), ('g1', 2, '{}')"
                )
            )
        upgrade(url, "0009")
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT seq, uid, prev_uid FROM rtmanager.job_result_outbox WHERE game_id = 'g1' ORDER BY seq")
            ).all()
            heads: dict[str, str | None] = {
                row.game_id: row.outbox_head
                for row in conn.execute(text("SELECT game_id, outbox_head FROM rtmanager.game_jobs"))
            }
        engine.dispose()
        assert [row.seq for row in rows] == [2, 3]
        assert rows[0].prev_uid is None, "the oldest waiting row starts the chain (its mark is a bare number)"
        assert rows[1].prev_uid == rows[0].uid
        assert heads == {"g1": rows[1].uid, "g2": None}
    finally:
        drop_database(url)
