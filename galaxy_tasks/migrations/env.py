"""Alembic environment: the database URL comes from ``GALAXY_DATABASE_URL`` (or the caller); online
migrations run under the migration lock, one host at a time."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from galaxy_tasks.adapters.postgres.migrate import migration_lock
from galaxy_tasks.config import get_settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with (
        engine.connect() as connection,
        migration_lock(connection, wait_seconds=get_settings().migrate_lock_wait_seconds),
    ):
        context.configure(connection=connection, version_table_schema="public")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
