"""Creating the database if needed and upgrading its schemas with Alembic."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from galaxy_tasks.adapters.postgres.engine import safe_url
from galaxy_tasks.domain.errors import PostgresUnavailable
from galaxy_tasks.logs import get_logger

log = get_logger(__name__)


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "galaxy_tasks:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def ensure_database(database_url: str) -> bool:
    """Create the target database when it does not exist; ``True`` if it was created."""
    url = make_url(database_url)
    name = url.database
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists:
                return False
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            log.info("database_created", database=name)
            return True
    except OperationalError as exc:
        raise PostgresUnavailable(f"{safe_url(database_url)}: {exc.orig}") from exc
    finally:
        admin.dispose()


def upgrade(database_url: str, revision: str = "head") -> None:
    """Create or upgrade both schemas to ``revision``."""
    ensure_database(database_url)
    try:
        command.upgrade(alembic_config(database_url), revision)
    except OperationalError as exc:
        raise PostgresUnavailable(f"{safe_url(database_url)}: {exc.orig}") from exc


def downgrade(database_url: str, revision: str) -> None:
    """Take both schemas back to ``revision`` (``base``: nothing left) — for rolling back a release."""
    try:
        command.downgrade(alembic_config(database_url), revision)
    except OperationalError as exc:
        raise PostgresUnavailable(f"{safe_url(database_url)}: {exc.orig}") from exc
