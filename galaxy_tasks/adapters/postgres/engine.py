"""Engines and error translation for PostgreSQL.

An engine is built per process (never at import: prefork children must not
share the parent's sockets) with ``pool_pre_ping`` so a restarted server costs
one failed check rather than one failed task, and a connect timeout so an
unreachable server fails fast into a retry.

No wait is unbounded: every session carries ``lock_timeout``,
``statement_timeout`` and ``idle_in_transaction_session_timeout``
(:class:`SessionLimits`), and TCP keepalives notice a server that vanished
without closing the connection.  A timeout is a :class:`TransientError`: the
task is retried, the entry never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy.exc
from sqlalchemy import Engine, create_engine, make_url

from galaxy_tasks.domain.errors import PostgresUnavailable, RowLocked, SchemaMissing, TransientError, ValueRefused

# SQLSTATEs worth a retry: serialization failure, deadlock, lock timeout, statement timeout (query
# canceled), admin shutdown, too many connections.
_VALUE_SQLSTATE_CLASSES = frozenset({"22", "23"})
"""Data exceptions and integrity violations: the values of the statement are refused, not the moment."""
_LOCK_NOT_AVAILABLE = "55P03"
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57014", "57P01", "57P02", "57P03", "53300"})

KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
"""A server gone without a word is noticed within about a minute, not after the kernel's two hours."""


@dataclass(frozen=True)
class SessionLimits:
    """PostgreSQL's own bounds on a session's waits, in milliseconds (0: off)."""

    lock_timeout_ms: int = 0
    statement_timeout_ms: int = 0
    idle_in_transaction_timeout_ms: int = 0

    def options(self) -> str:
        return (
            f"-c lock_timeout={self.lock_timeout_ms} -c statement_timeout={self.statement_timeout_ms} "
            f"-c idle_in_transaction_session_timeout={self.idle_in_transaction_timeout_ms}"
        )


def _connect_args(connect_timeout: int, limits: SessionLimits) -> dict[str, object]:
    return {
        "connect_timeout": connect_timeout,
        "application_name": "galaxy_tasks",
        "options": limits.options(),
        **KEEPALIVES,
    }


def build_engine(url: str, *, pool_size: int, connect_timeout: int, limits: SessionLimits | None = None) -> Engine:
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=_connect_args(connect_timeout, limits or SessionLimits()),
    )


def build_autocommit_engine(
    url: str, *, pool_size: int, connect_timeout: int, limits: SessionLimits | None = None
) -> Engine:
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
        connect_args=_connect_args(connect_timeout, limits or SessionLimits()),
    )


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


_SCHEMA_MISSING = frozenset({"42P01", "3F000"})
"""undefined_table, invalid_schema_name: the database was not migrated (far enough)."""


@contextmanager
def translated_errors(url: str) -> Iterator[None]:
    """Re-raise SQLAlchemy's connection and contention errors as galaxy_tasks errors."""
    try:
        yield
    except sqlalchemy.exc.DBAPIError as exc:
        code = getattr(exc.orig, "pgcode", None)
        if exc.connection_invalidated or (isinstance(exc, sqlalchemy.exc.OperationalError) and code is None):
            raise PostgresUnavailable(f"{safe_url(url)}: {exc.orig}") from exc
        if code == _LOCK_NOT_AVAILABLE:
            raise RowLocked(f"postgresql {code}: {exc.orig}") from exc
        if code in _SCHEMA_MISSING:
            raise SchemaMissing(f"{safe_url(url)}: {str(exc.orig).strip()}") from exc
        if code in _TRANSIENT_SQLSTATES:
            raise TransientError(f"postgresql {code}: {exc.orig}") from exc
        if code is not None and code[:2] in _VALUE_SQLSTATE_CLASSES:
            raise ValueRefused(code, str(exc.orig).strip()) from exc
        raise
