"""The start/stop jobs' PostgreSQL side: the per-game hold, the record, the log row, the result outbox.

A job holds its game's ``rtmanager.game_jobs`` row ``FOR UPDATE`` in one
transaction for its whole run, so jobs of one game queue behind each other
(two starts cannot make two containers) while other games' jobs run freely.
Everything the job decides is written at the end of that same transaction.
The only write made earlier is :meth:`PostgresJobTransaction.mark`, on a
connection of its own, so the events listener and the reconciler see at once
that the game's container is going away on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

from galaxy_tasks.adapters.postgres.engine import translated_errors
from galaxy_tasks.adapters.postgres.health_events import record_health_event
from galaxy_tasks.domain.rtmanager.jobs import JobOutcome, JobResult, RecordStatus, RecordView
from galaxy_tasks.ports import CommittedJob, FinishedJob, OutboxEntry

_CLAIM = text("INSERT INTO rtmanager.game_jobs (game_id) VALUES (:game_id) ON CONFLICT (game_id) DO NOTHING")
_HOLD = text("SELECT game_id FROM rtmanager.game_jobs WHERE game_id = :game_id FOR UPDATE")
_FINISHED = text(
    "SELECT game_id, outcome, container_id, engine_endpoint, error_code, error_message "
    "FROM rtmanager.operation_log WHERE job_id = :job_id"
)
_RECORD = text(
    "SELECT status, current_container_id, image_ref, engine_endpoint, docker_host FROM rtmanager.runtime_records "
    "WHERE game_id = :game_id"
)
_MARK = text("UPDATE rtmanager.runtime_records SET status = :status, updated_at = now() WHERE game_id = :game_id")
_WRITE_RECORD = text(
    """
    INSERT INTO rtmanager.runtime_records AS r
        (game_id, status, current_container_id, image_ref, engine_endpoint, docker_host)
    VALUES (:game_id, :status, :container_id, :image_ref, :engine_endpoint, :docker_host)
    ON CONFLICT (game_id) DO UPDATE SET
        status = EXCLUDED.status, current_container_id = EXCLUDED.current_container_id,
        image_ref = EXCLUDED.image_ref, engine_endpoint = EXCLUDED.engine_endpoint,
        docker_host = EXCLUDED.docker_host, updated_at = now()
    WHERE (r.status, r.current_container_id, r.image_ref, r.engine_endpoint, r.docker_host)
        IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.current_container_id, EXCLUDED.image_ref,
                          EXCLUDED.engine_endpoint, EXCLUDED.docker_host)
    """
)
_LOG = text(
    """
    INSERT INTO rtmanager.operation_log
        (game_id, operation, outcome, error_code, error_message, container_id, image_ref, engine_endpoint,
         source_entry_id, job_id, reason, started_at, finished_at, duration_ms)
    VALUES (:game_id, :operation, :outcome, :error_code, :error_message, :container_id, :image_ref,
            :engine_endpoint, :source_entry_id, :job_id, :reason,
            to_timestamp(CAST(:started_at_ms AS double precision) / 1000),
            to_timestamp(CAST(:finished_at_ms AS double precision) / 1000), :duration_ms)
    """
)
_LOG_ONCE = text(f"{_LOG.text}    ON CONFLICT (job_id) WHERE job_id IS NOT NULL DO NOTHING")
"""The log row of a job outside every game's hold (an invalid request of a game without history)."""
_RESULT = text(
    """
    WITH numbered AS (
        UPDATE rtmanager.game_jobs
        SET result_seq = result_seq + 1, outbox_prev = outbox_head, outbox_head = gen_random_uuid(), updated_at = now()
        WHERE game_id = :game_id RETURNING game_id, result_seq, outbox_head, outbox_prev
    )
    INSERT INTO rtmanager.job_result_outbox (game_id, seq, uid, prev_uid, fields)
    SELECT game_id, result_seq, outbox_head, outbox_prev, CAST(:fields AS jsonb) FROM numbered
    RETURNING seq, uid, prev_uid
    """
)


_HAS_GAME = text(
    "SELECT EXISTS (SELECT 1 FROM rtmanager.runtime_records WHERE game_id = :game_id) "
    "OR EXISTS (SELECT 1 FROM rtmanager.game_jobs WHERE game_id = :game_id)"
)


def _finished(conn: Connection, job_id: str) -> JobResult | None:
    row = conn.execute(_FINISHED, {"job_id": job_id}).one_or_none()
    if row is None:
        return None
    return JobResult(
        row.game_id, JobOutcome(row.outcome), row.container_id, row.engine_endpoint, row.error_code, row.error_message
    )


def _log_params(game_id: str, job: FinishedJob) -> dict[str, object]:
    result = job.result
    return {
        "game_id": game_id,
        "operation": job.kind.value,
        "outcome": result.outcome.value,
        "error_code": result.error_code,
        "error_message": result.error_message,
        "container_id": result.container_id,
        "image_ref": job.image_ref,
        "engine_endpoint": result.engine_endpoint,
        "source_entry_id": job.source_entry_id,
        "job_id": job.job_id,
        "reason": job.reason,
        "started_at_ms": job.started_at_ms,
        "finished_at_ms": job.finished_at_ms,
        "duration_ms": job.finished_at_ms - job.started_at_ms,
    }


class PostgresJobTransaction:
    def __init__(self, conn: Connection, engine: Engine, game_id: str, url: str) -> None:
        self._conn = conn
        self._engine = engine
        self._game_id = game_id
        self._url = url

    def finished_result(self, job_id: str) -> JobResult | None:
        with translated_errors(self._url):
            return _finished(self._conn, job_id)

    def record(self) -> RecordView | None:
        with translated_errors(self._url):
            row = self._conn.execute(_RECORD, {"game_id": self._game_id}).one_or_none()
        if row is None:
            return None
        return RecordView(row.status, row.current_container_id, row.image_ref, row.engine_endpoint, row.docker_host)

    def mark(self, status: RecordStatus) -> None:
        with translated_errors(self._url), self._engine.begin() as side:
            side.execute(_MARK, {"game_id": self._game_id, "status": status.value})

    def finish(self, job: FinishedJob) -> CommittedJob:
        result = job.result
        conn = self._conn
        with translated_errors(self._url):
            if job.record is not None:
                record = job.record
                conn.execute(
                    _WRITE_RECORD,
                    {
                        "game_id": self._game_id,
                        "status": record.status,
                        "container_id": record.container_id,
                        "image_ref": record.image_ref,
                        "engine_endpoint": record.engine_endpoint,
                        "docker_host": record.docker_host,
                    },
                )
            health = None if job.health_event is None else record_health_event(conn, job.health_event)
            conn.execute(_LOG, _log_params(self._game_id, job))
            fields = result.to_fields()
            row = conn.execute(_RESULT, {"game_id": self._game_id, "fields": json.dumps(fields)}).one()
        entry = OutboxEntry(self._game_id, int(row.seq), fields, str(row.uid), str(row.prev_uid or ""))
        return CommittedJob(entry, health)


class PostgresJobStore:
    """``JobStore`` on a pooled engine (a job uses two connections: its hold and the side mark)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._url = engine.url.render_as_string(hide_password=False)

    def finished_result(self, job_id: str) -> JobResult | None:
        with translated_errors(self._url), self._engine.connect() as conn:
            return _finished(conn, job_id)

    def log_outside_game(self, job: FinishedJob) -> tuple[JobResult, bool]:
        with translated_errors(self._url), self._engine.begin() as conn:
            logged = conn.execute(_LOG_ONCE, _log_params(job.result.game_id, job)).rowcount
            stored = _finished(conn, job.job_id)
        assert stored is not None  # just inserted, or there before
        return stored, bool(logged)

    def has_game(self, game_id: str) -> bool:
        with translated_errors(self._url), self._engine.connect() as conn:
            return bool(conn.execute(_HAS_GAME, {"game_id": game_id}).scalar_one())

    @contextmanager
    def hold(self, game_id: str) -> Iterator[PostgresJobTransaction]:
        with translated_errors(self._url), self._engine.connect() as conn, conn.begin():
            conn.execute(_CLAIM, {"game_id": game_id})
            conn.execute(_HOLD, {"game_id": game_id})
            yield PostgresJobTransaction(conn, self._engine, game_id, self._url)
