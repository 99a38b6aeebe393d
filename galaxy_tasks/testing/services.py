"""PostgreSQL and Redis as the integration tests and bench reach them — loudly — and free ports.

A run that needs a service fails with a message naming the URL and the
command that starts it; nothing skips.  Each test (or bench scenario) works in
a database of its own (:func:`fresh_database_url`, migrated by the caller) and
drops it afterwards (:func:`drop_database`).
"""

from __future__ import annotations

import os
import socket
import uuid

import redis
from sqlalchemy import create_engine, make_url, text

POSTGRES_ADMIN_URL = os.environ.get(
    "GALAXY_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def require_redis(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise RuntimeError(
            f"Redis is required at {url} and did not answer ({exc}). Start it with `bash scripts/services.sh`."
        ) from exc
    return client


def require_postgres(url: str = POSTGRES_ADMIN_URL) -> None:
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise RuntimeError(
            f"PostgreSQL is required at {url} and did not answer ({exc}). Start it with `bash scripts/services.sh`."
        ) from exc
    finally:
        engine.dispose()


def fresh_database_url(admin_url: str = POSTGRES_ADMIN_URL) -> str:
    """A new, empty, uniquely named database (migrated by the caller)."""
    name = f"galaxy_test_{uuid.uuid4().hex[:10]}"
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str, admin_url: str = POSTGRES_ADMIN_URL) -> None:
    run_admin_statement(admin_url, f'DROP DATABASE IF EXISTS "{make_url(database_url).database}" WITH (FORCE)')


def run_admin_statement(admin_url: str, statement: str) -> None:
    """One statement outside a transaction (``CREATE``/``DROP DATABASE``) on the admin database."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def free_loopback_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 right now (for a host-networked engine, a private server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
