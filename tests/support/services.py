"""Reaching the real PostgreSQL and Redis the integration tests need — loudly.

A test that needs a service fails with a message naming the URL and the
command that starts it; it never skips.
"""

from __future__ import annotations

import os
import uuid

import redis
from sqlalchemy import create_engine, make_url, text

REDIS_URL = os.environ.get("GALAXY_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
POSTGRES_ADMIN_URL = os.environ.get(
    "GALAXY_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def require_redis(url: str = REDIS_URL) -> redis.Redis:
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
    name = make_url(database_url).database
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()
