"""Engines and error translation for PostgreSQL.

An engine is built per process (never at import: prefork children must not
share the parent's sockets) with ``pool_pre_ping`` so a restarted server costs
one failed check rather than one failed task, and a connect timeout so an
unreachable server fails fast into a retry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy.exc
from sqlalchemy import Engine, create_engine, make_url

from galaxy_tasks.domain.errors import BackendUnavailable, TransientError

# SQLSTATEs worth a retry: serialization failure, deadlock, lock timeout, admin shutdown, too many connections.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"})


def build_engine(url: str, *, pool_size: int, connect_timeout: int) -> Engine:
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": connect_timeout, "application_name": "galaxy_tasks"},
    )


def build_autocommit_engine(url: str, *, pool_size: int, connect_timeout: int) -> Engine:
    """An engine for units of work that send their own ``BEGIN``/``COMMIT`` (the per-event hot path).

    Autocommit at the engine level, so no checkout or checkin switches the
    isolation level; no reset on return (the unit of work rolls back itself
    whatever it leaves open); no pre-ping round trip per checkout: the unit of
    work reconnects once itself when its first statement finds the connection
    dead, which is when nothing has been done yet.
    """
    return create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_reset_on_return=None,
        pool_recycle=1800,
        connect_args={"connect_timeout": connect_timeout, "application_name": "galaxy_tasks"},
    )


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def translated_errors(url: str) -> Iterator[None]:
    """Re-raise SQLAlchemy's connection and contention errors as galaxy_tasks errors."""
    try:
        yield
    except sqlalchemy.exc.DBAPIError as exc:
        code = getattr(exc.orig, "pgcode", None)
        if exc.connection_invalidated or (isinstance(exc, sqlalchemy.exc.OperationalError) and code is None):
            raise BackendUnavailable("postgresql", f"{safe_url(url)}: {exc.orig}") from exc
        if code in _TRANSIENT_SQLSTATES:
            raise TransientError(f"postgresql {code}: {exc.orig}") from exc
        raise
