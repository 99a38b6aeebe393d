"""Reads of ``rtmanager.runtime_records`` for the health sweeps, the listener and the reconciler."""

from __future__ import annotations

from sqlalchemy import Engine, text

from galaxy_tasks.adapters.postgres.engine import translated_errors
from galaxy_tasks.domain.rtmanager.jobs import RecordStatus
from galaxy_tasks.ports.rtmanager import RunningRecord

_RUNNING = text(
    "SELECT r.game_id, r.current_container_id, r.engine_endpoint, coalesce(s.down_seq, 0) AS down_seq "
    "FROM rtmanager.runtime_records r LEFT JOIN rtmanager.health_snapshots s ON s.game_id = r.game_id "
    "WHERE r.status = :running AND r.docker_host = :host ORDER BY r.game_id"
)
_EXITED = text(
    "SELECT r.game_id, r.current_container_id, r.engine_endpoint, "
    "CASE WHEN s.details->>'exit_code' ~ '^-?[0-9]{1,9}$' THEN (s.details->>'exit_code')::int END AS exit_code "
    "FROM rtmanager.runtime_records r LEFT JOIN rtmanager.health_snapshots s ON s.game_id = r.game_id "
    "WHERE r.status = :exited AND r.docker_host = :host ORDER BY r.game_id"
)
_RUNNING_CONTAINER = text(
    "SELECT current_container_id FROM rtmanager.runtime_records WHERE game_id = :game_id AND status = :running"
)


_CURRENT = text("SELECT current_container_id FROM rtmanager.runtime_records WHERE current_container_id <> ''")


class PostgresRuntimeRecords:
    """Running records of one Docker host (``host_name``; empty with a single host)."""

    def __init__(self, engine: Engine, host_name: str = "") -> None:
        self._engine = engine
        self._host = host_name
        self._url = engine.url.render_as_string(hide_password=False)

    def running(self) -> list[RunningRecord]:
        with translated_errors(self._url), self._engine.connect() as conn:
            rows = conn.execute(_RUNNING, {"host": self._host, "running": RecordStatus.RUNNING.value})
            return [RunningRecord(r.game_id, r.current_container_id, r.engine_endpoint, int(r.down_seq)) for r in rows]

    def exited(self) -> list[RunningRecord]:
        with translated_errors(self._url), self._engine.connect() as conn:
            rows = conn.execute(_EXITED, {"host": self._host, "exited": RecordStatus.EXITED.value})
            return [
                RunningRecord(r.game_id, r.current_container_id, r.engine_endpoint, death_exit_code=r.exit_code)
                for r in rows
            ]

    def running_container(self, game_id: str) -> str | None:
        with translated_errors(self._url), self._engine.connect() as conn:
            found = conn.execute(
                _RUNNING_CONTAINER, {"game_id": game_id, "running": RecordStatus.RUNNING.value}
            ).scalar_one_or_none()
        return None if found is None else str(found)

    def current_container_ids(self) -> set[str]:
        with translated_errors(self._url), self._engine.connect() as conn:
            return {str(row.current_container_id) for row in conn.execute(_CURRENT)}


_HOST_OF = text("SELECT docker_host FROM rtmanager.runtime_records WHERE game_id = :game_id")
_RUNNING_BY_HOST = text(
    "SELECT docker_host, count(*) AS n FROM rtmanager.runtime_records WHERE status = :running GROUP BY docker_host"
)


class PostgresPlacement:
    """What placing a job on a Docker host reads: the game's host, and how many games each host runs."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._url = engine.url.render_as_string(hide_password=False)

    def host_of(self, game_id: str) -> str:
        with translated_errors(self._url), self._engine.connect() as conn:
            return str(conn.execute(_HOST_OF, {"game_id": game_id}).scalar_one_or_none() or "")

    def running_by_host(self) -> dict[str, int]:
        with translated_errors(self._url), self._engine.connect() as conn:
            return {
                str(row.docker_host): int(row.n)
                for row in conn.execute(_RUNNING_BY_HOST, {"running": RecordStatus.RUNNING.value})
            }
