"""Creating the database if needed and upgrading its schemas with Alembic, one host at a time.

Every host runs ``galaxy-tasks migrate`` at boot (deploy/), so two may start
together: the database's creation tolerates losing that race, and the
migrations themselves run under a PostgreSQL advisory lock
(:data:`~galaxy_tasks.contract.MIGRATION_LOCK`) that the others wait for —
bounded, with a log line naming the holder — before finding the schemas
already at the revision they want.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError

from galaxy_tasks.adapters.postgres.engine import safe_url
from galaxy_tasks.contract import MIGRATION_LOCK
from galaxy_tasks.domain.errors import MigrationInProgress, PostgresUnavailable
from galaxy_tasks.logs import get_logger

log = get_logger(__name__)

_CREATED_ELSEWHERE = ("42P04", "23505")
"""duplicate_database, or — when two CREATE DATABASE run at the same moment — a unique violation in pg_database."""
_LOCK_POLL_SECONDS = 0.5
_WAIT_LOG_EVERY_SECONDS = 10.0
_LOCK_KEYS = {"namespace": MIGRATION_LOCK[0], "id": MIGRATION_LOCK[1]}
_HOLDER = text(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = :namespace AND objid = :id "
    "AND objsubid = 2 AND granted"
)


@contextmanager
def migration_lock(
    connection: Connection,
    *,
    wait_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold the migration lock (session level) for the block; wait at most ``wait_seconds`` for it.

    Polls ``pg_try_advisory_lock`` rather than blocking in ``pg_advisory_lock``,
    so the wait is bounded and logged whatever the server's ``lock_timeout``.
    The connection is left outside a transaction, as Alembic expects it.
    """
    started = clock()
    next_log = started
    while not connection.execute(text("SELECT pg_try_advisory_lock(:namespace, :id)"), _LOCK_KEYS).scalar():
        holder = connection.execute(_HOLDER, _LOCK_KEYS).scalar()
        connection.commit()
        waited = clock() - started
        if waited >= wait_seconds:
            raise MigrationInProgress(
                f"another galaxy-tasks migrate (server pid {holder}) still holds the migration lock after "
                f"{waited:.0f} s (GALAXY_MIGRATE_LOCK_WAIT_SECONDS={wait_seconds:g}); try again when it is done"
            )
        if clock() >= next_log:
            log.info("migration_waiting_for_lock", holder_pid=holder, waited_seconds=round(waited, 1))
            next_log = clock() + _WAIT_LOG_EVERY_SECONDS
        sleep(_LOCK_POLL_SECONDS)
    connection.commit()
    try:
        yield
    finally:
        try:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:namespace, :id)"), _LOCK_KEYS)
            connection.commit()
        except DBAPIError:
            pass  # the session is gone, and its lock with it


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
            try:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            except DBAPIError as exc:  # another host created it meanwhile
                if getattr(exc.orig, "pgcode", None) not in _CREATED_ELSEWHERE:
                    raise
                log.info("database_created_elsewhere", database=name)
                return False
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
