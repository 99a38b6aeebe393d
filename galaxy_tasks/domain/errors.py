"""One error hierarchy for the whole package.

Adapters translate third-party exceptions (``redis``, ``sqlalchemy.exc``,
``docker.errors``, ``kombu``) into these at the boundary (``raise … from exc``),
so the services, the Celery tasks and the CLI reason about these only::

    GalaxyError
     ├── TransientError              the same call may succeed on a later try
     │    ├── BackendUnavailable     a backing service did not answer
     │    │    ├── RedisUnavailable
     │    │    ├── PostgresUnavailable
     │    │    ├── BrokerUnavailable
     │    │    └── DockerUnavailable
     │    ├── RowLocked              one game's row is held by another session
     │    └── ClaimLost              a job's claim expired while it ran (it runs again)
     ├── PermanentError              retrying cannot help (bad input, broken contract)
     │    ├── MalformedEntry         a stream entry that fails validation
     │    │    └── InvalidJob        a start/stop job that breaks the contract
     │    ├── ValueRefused           the database refused a value the input carried
     │    ├── SchemaMissing          the database has no galaxy_tasks schema yet (run migrate)
     │    └── JobFailed              Docker's word: the job cannot succeed (its result says why)
     ├── WrongDockerHost             the game's container lives on another Docker host
     ├── ConfigError                 a GALAXY_* variable holds a value that cannot be used
     └── LocalRunFailed              galaxy-tasks run could not set up a piece it needs

Tasks retry ``TransientError`` with backoff and never retry ``PermanentError``;
the CLI maps ``ConfigError``, ``SchemaMissing``, ``BackendUnavailable`` and ``LocalRunFailed`` to
its exit codes and lets anything else show its traceback (a bug, not an
operations problem).  The job and configuration errors are defined beside the
rules that raise them (``domain/rtmanager/jobs.py``, ``config.py``,
``service/jobs.py``) and subclass these.
"""

from __future__ import annotations


class GalaxyError(Exception):
    """Root of every error raised on purpose by galaxy_tasks."""


class TransientError(GalaxyError):
    """A failure that may go away by itself: retry later."""


class BackendUnavailable(TransientError):
    """A backing service did not answer; raise the subclass that names it."""

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend} unavailable: {detail}")
        self.backend = backend
        self.detail = detail


class RedisUnavailable(BackendUnavailable):
    """Redis (streams, offsets, leases, shared state) did not answer."""

    def __init__(self, detail: str) -> None:
        super().__init__("redis", detail)


class PostgresUnavailable(BackendUnavailable):
    """PostgreSQL did not answer (or restarted under the session)."""

    def __init__(self, detail: str) -> None:
        super().__init__("postgresql", detail)


class BrokerUnavailable(BackendUnavailable):
    """The Celery broker did not take a message."""

    def __init__(self, detail: str) -> None:
        super().__init__("broker", detail)


class DockerUnavailable(BackendUnavailable):
    """The Docker Engine did not answer (connection refused, socket gone, timeout, a server error)."""

    def __init__(self, detail: str) -> None:
        super().__init__("docker", detail)


class RowLocked(TransientError):
    """A row another session holds past the lock timeout (PostgreSQL SQLSTATE 55P03): that game is
    busy, not the database; work on other games need not wait for it."""


class MigrationInProgress(TransientError):
    """Another ``galaxy-tasks migrate`` held the migration lock for longer than this one would wait."""


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


class SchemaMissing(PermanentError):
    """The database lacks a galaxy_tasks table or schema (PostgreSQL SQLSTATE 42P01 or 3F000): it was
    never migrated, or migrated to an older revision than this code."""


class LocalRunFailed(GalaxyError):
    """``galaxy-tasks run`` could not set up a piece it needs (a private dockerd, the engine image, the demo)."""
