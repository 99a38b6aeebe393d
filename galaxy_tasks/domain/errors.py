"""One error hierarchy for the whole package.

Adapters translate third-party exceptions (``redis``, ``sqlalchemy.exc``,
``docker.errors``) into these at the boundary (``raise … from exc``), so the
service layer and the Celery tasks reason about two kinds only::

    GalaxyError
     ├── TransientError      the same call may succeed on a later try
     │    └── BackendUnavailable   Redis / PostgreSQL / broker unreachable
     └── PermanentError      retrying cannot help (bad input, broken contract)
          ├── MalformedEntry       a stream entry that fails validation
          └── ValueRefused         the database refused a value the input carried

Tasks retry ``TransientError`` with backoff and never retry ``PermanentError``.
"""

from __future__ import annotations


class GalaxyError(Exception):
    """Root of every error raised on purpose by galaxy_tasks."""


class TransientError(GalaxyError):
    """A failure that may go away by itself: retry later."""


class BackendUnavailable(TransientError):
    """A backing service (Redis, PostgreSQL, broker) did not answer."""

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend} unavailable: {detail}")
        self.backend = backend
        self.detail = detail


class RowLocked(TransientError):
    """A row another session holds past the lock timeout (PostgreSQL SQLSTATE 55P03): that game is
    busy, not the database; work on other games need not wait for it."""


class PermanentError(GalaxyError):
    """A failure that retrying cannot fix."""


class MalformedEntry(PermanentError):
    """A stream entry whose fields break the contract (SPEC §3)."""


class ValueRefused(PermanentError):
    """The database refused a value (PostgreSQL SQLSTATE class 22 "data exception" or 23 "integrity
    constraint violation"): the same statement with the same values fails again, so the input that
    carried the value is what to skip, not something to retry."""

    def __init__(self, sqlstate: str, detail: str) -> None:
        super().__init__(f"postgresql {sqlstate}: {detail}")
        self.sqlstate = sqlstate
