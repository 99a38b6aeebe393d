"""Reads of ``rtmanager.runtime_records`` for the health sweeps."""

from __future__ import annotations

from sqlalchemy import Engine, text

from galaxy_tasks.adapters.postgres.engine import translated_errors
from galaxy_tasks.ports import RunningRecord

_RUNNING = text(
    "SELECT game_id, current_container_id, engine_endpoint FROM rtmanager.runtime_records "
    "WHERE status = 'running' ORDER BY game_id"
)


_CURRENT = text("SELECT current_container_id FROM rtmanager.runtime_records WHERE current_container_id <> ''")


class PostgresRuntimeRecords:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._url = engine.url.render_as_string(hide_password=False)

    def running(self) -> list[RunningRecord]:
        with translated_errors(self._url), self._engine.connect() as conn:
            return [RunningRecord(r.game_id, r.current_container_id, r.engine_endpoint) for r in conn.execute(_RUNNING)]

    def current_container_ids(self) -> set[str]:
        with translated_errors(self._url), self._engine.connect() as conn:
            return {str(row.current_container_id) for row in conn.execute(_CURRENT)}
