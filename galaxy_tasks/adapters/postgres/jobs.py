"""The start/stop jobs' PostgreSQL side: the per-game queue and claim, the record, the log row, the result outbox.

A job claims its game's ``rtmanager.game_jobs`` row in a short transaction
(``claim_job_id``, a new ``claim_epoch``, ``claimed_at``) and holds no
transaction while it talks to Docker; its mark and its outcome are written
only while the claim is still its own (same job, same epoch): a job that
overran its bound and was cleared by the periodic pass writes nothing.  Jobs
wait in ``rtmanager.job_queue`` and are taken per game by order key.  Every
time is PostgreSQL's ``now()``: one clock for every worker.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Row, text

from galaxy_tasks.adapters.postgres.engine import translated_errors
from galaxy_tasks.adapters.postgres.health_events import record_health_event
from galaxy_tasks.domain.rtmanager.job_order import JobOrder, QueuedJob
from galaxy_tasks.domain.rtmanager.jobs import JobKind, JobOutcome, JobResult, RecordStatus, RecordView
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.ports.jobs import Busy, Claim, ClaimedRecord, CommittedJob, FinishedJob, StaleClaim
from galaxy_tasks.ports.outbox import OutboxEntry

_ENSURE_GAME = text(
    "INSERT INTO rtmanager.game_jobs (game_id) SELECT :game_id "
    "WHERE EXISTS (SELECT 1 FROM rtmanager.job_queue WHERE game_id = :game_id) ON CONFLICT (game_id) DO NOTHING"
)
"""A game gets its row with its first queued job (a turn with nothing queued creates no per-game state)."""
_GAME_FOR_UPDATE = text(
    "SELECT claim_job_id, claim_epoch, applied_ms, applied_seq, applied_job_id, "
    "claimed_at > now() - make_interval(secs => :bound) AS live "
    "FROM rtmanager.game_jobs WHERE game_id = :game_id FOR UPDATE"
)
_NEXT_QUEUED = text(
    "SELECT job_id, game_id, kind, order_ms, order_seq, image_ref, reason, invalid, source_entry_id "
    "FROM rtmanager.job_queue WHERE game_id = :game_id ORDER BY order_ms, order_seq, job_id LIMIT 1"
)
_TAKE_CLAIM = text(
    "UPDATE rtmanager.game_jobs SET claim_job_id = :job_id, claim_epoch = claim_epoch + 1, claimed_at = now(), "
    "claim_prev_status = :prev_status, updated_at = now() WHERE game_id = :game_id RETURNING claim_epoch"
)
_FREE = (
    "claim_job_id = NULL, claimed_at = NULL, claim_prev_status = NULL, updated_at = now() "
    "WHERE game_id = :game_id AND claim_epoch = :epoch AND claim_job_id = :job_id"
)
_RELEASE = text(f"UPDATE rtmanager.game_jobs SET {_FREE}")
_RELEASE_EMPTY = text(
    "UPDATE rtmanager.game_jobs SET claim_job_id = NULL, claimed_at = NULL, claim_prev_status = NULL "
    "WHERE game_id = :game_id AND claim_job_id IS NOT NULL"
)
_DEQUEUE = text("DELETE FROM rtmanager.job_queue WHERE job_id = :job_id")
_FORGET_IF_NO_HISTORY = text(
    """
    DELETE FROM rtmanager.game_jobs g WHERE g.game_id = :game_id AND g.result_seq = 0 AND g.claim_job_id IS NULL
        AND NOT EXISTS (SELECT 1 FROM rtmanager.job_queue q WHERE q.game_id = g.game_id)
        AND NOT EXISTS (SELECT 1 FROM rtmanager.runtime_records r WHERE r.game_id = g.game_id)
        AND NOT EXISTS (SELECT 1 FROM rtmanager.operation_log o WHERE o.game_id = g.game_id)
    """
)
"""A game whose only job was dropped unanswered in its sequence (its values refused) keeps no per-game row."""
_APPLIED = text(
    "UPDATE rtmanager.game_jobs SET applied_ms = :ms, applied_seq = :seq, applied_job_id = :job_id "
    "WHERE game_id = :game_id AND (applied_ms, applied_seq, applied_job_id) < (:ms, :seq, :job_id)"
)
_CLAIM_OF = text("SELECT claim_job_id, claim_epoch FROM rtmanager.game_jobs WHERE game_id = :game_id FOR UPDATE")
_ENQUEUE = text(
    """
    INSERT INTO rtmanager.job_queue
        (job_id, game_id, kind, order_ms, order_seq, image_ref, reason, invalid, source_entry_id)
    SELECT :job_id, :game_id, :kind, :order_ms, :order_seq, :image_ref, :reason, :invalid, :source_entry_id
    WHERE NOT EXISTS (SELECT 1 FROM rtmanager.operation_log WHERE job_id = :job_id)
    ON CONFLICT (job_id) DO NOTHING
    """
)
_KNOWN = text(
    "SELECT job_id FROM rtmanager.job_queue WHERE job_id = ANY(:ids) "
    "UNION SELECT job_id FROM rtmanager.operation_log WHERE job_id = ANY(:ids)"
)
_FINISHED = text(
    "SELECT game_id, outcome, container_id, engine_endpoint, error_code, error_message "
    "FROM rtmanager.operation_log WHERE job_id = :job_id"
)
_RECORD = text(
    "SELECT status, current_container_id, image_ref, engine_endpoint, docker_host FROM rtmanager.runtime_records "
    "WHERE game_id = :game_id"
)
_MARK = text(
    """
    WITH held AS (
        UPDATE rtmanager.game_jobs SET claimed_at = now()
        WHERE game_id = :game_id AND claim_epoch = :epoch AND claim_job_id = :job_id RETURNING game_id
    )
    UPDATE rtmanager.runtime_records SET status = :status, updated_at = now()
    WHERE game_id IN (SELECT game_id FROM held) RETURNING game_id
    """
)
_PUT_BACK = text(
    """
    UPDATE rtmanager.runtime_records r SET status = j.claim_prev_status, updated_at = now()
    FROM rtmanager.game_jobs j
    WHERE r.game_id = :game_id AND j.game_id = :game_id AND j.claim_epoch = :epoch AND j.claim_job_id = :job_id
        AND j.claim_prev_status IS NOT NULL
    RETURNING r.game_id
    """
)
_STALE = text(
    """
    SELECT j.game_id, j.claim_job_id, j.claim_epoch, j.claim_prev_status,
           (extract(epoch FROM j.claimed_at) * 1000)::bigint AS claimed_ms,
           coalesce(q.kind, 'start') AS kind, coalesce(q.image_ref, '') AS job_image_ref,
           r.status, r.current_container_id, r.image_ref, r.engine_endpoint, r.docker_host
    FROM rtmanager.game_jobs j
    LEFT JOIN rtmanager.job_queue q ON q.job_id = j.claim_job_id
    LEFT JOIN rtmanager.runtime_records r ON r.game_id = j.game_id
    WHERE j.claim_job_id IS NOT NULL AND j.claimed_at < now() - make_interval(secs => :bound)
    ORDER BY j.claimed_at LIMIT :limit
    """
)
_CLEAR_STALE = text(
    "UPDATE rtmanager.game_jobs SET claim_job_id = NULL, claimed_at = NULL, claim_prev_status = NULL, "
    "claim_epoch = claim_epoch + 1, updated_at = now() "
    "WHERE game_id = :game_id AND claim_epoch = :epoch AND claim_job_id = :job_id"
)
_UNCLAIMED = text(
    """
    SELECT q.game_id FROM rtmanager.job_queue q
    LEFT JOIN rtmanager.game_jobs j ON j.game_id = q.game_id
    WHERE q.queued_at < now() - make_interval(secs => :seconds) AND j.claim_job_id IS NULL
    GROUP BY q.game_id ORDER BY min(q.queued_at) LIMIT :limit
    """
)
_TRANSITIONAL = text(
    "SELECT r.game_id, r.status, j.claim_job_id, (extract(epoch FROM j.claimed_at) * 1000)::bigint AS claimed_ms "
    "FROM rtmanager.runtime_records r LEFT JOIN rtmanager.game_jobs j ON j.game_id = r.game_id "
    "WHERE r.status IN (:starting, :stopping) ORDER BY r.game_id"
)
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


def _record(conn: Connection, game_id: str) -> RecordView | None:
    row = conn.execute(_RECORD, {"game_id": game_id}).one_or_none()
    if row is None:
        return None
    return RecordView(row.status, row.current_container_id, row.image_ref, row.engine_endpoint, row.docker_host)


def _write_record(conn: Connection, game_id: str, record: RecordView) -> None:
    conn.execute(
        _WRITE_RECORD,
        {
            "game_id": game_id,
            "status": record.status,
            "container_id": record.container_id,
            "image_ref": record.image_ref,
            "engine_endpoint": record.engine_endpoint,
            "docker_host": record.docker_host,
        },
    )


def _queued(row: Row[Any]) -> QueuedJob:
    return QueuedJob(
        job_id=row.job_id,
        game_id=row.game_id,
        kind=JobKind(row.kind),
        key=StreamId(int(row.order_ms), int(row.order_seq)),
        image_ref=row.image_ref,
        reason=row.reason,
        invalid=row.invalid,
        source_entry_id=row.source_entry_id,
    )


def _claim_params(claim: Claim) -> dict[str, object]:
    return {"game_id": claim.job.game_id, "epoch": claim.epoch, "job_id": claim.job.job_id}


class PostgresJobQueue:
    """``JobQueue`` on a pooled engine: every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._url = engine.url.render_as_string(hide_password=False)

    def enqueue(self, jobs: Sequence[QueuedJob]) -> int:
        if not jobs:
            return 0
        params = [
            {
                "job_id": job.job_id,
                "game_id": job.game_id,
                "kind": job.kind.value,
                "order_ms": job.key.ms,
                "order_seq": job.key.seq,
                "image_ref": job.image_ref,
                "reason": job.reason,
                "invalid": job.invalid,
                "source_entry_id": job.source_entry_id,
            }
            for job in jobs
        ]
        with translated_errors(self._url), self._engine.begin() as conn:
            return sum(conn.execute(_ENQUEUE, one).rowcount for one in params)

    def claim_next(self, game_id: str, *, bound_seconds: float) -> Claim | Busy | None:
        with translated_errors(self._url), self._engine.begin() as conn:
            conn.execute(_ENSURE_GAME, {"game_id": game_id})
            game = conn.execute(_GAME_FOR_UPDATE, {"game_id": game_id, "bound": bound_seconds}).one_or_none()
            if game is None:
                return None  # nothing was ever queued for it
            if game.claim_job_id is not None:
                # A live claim runs the queue; a stale one waits for the periodic pass (it looks at Docker).
                return Busy(
                    str(game.claim_job_id) + ("" if game.live else " (past its bound: the periodic pass clears it)")
                )
            row = conn.execute(_NEXT_QUEUED, {"game_id": game_id}).one_or_none()
            if row is None:
                conn.execute(_RELEASE_EMPTY, {"game_id": game_id})
                return None
            job = _queued(row)
            record = _record(conn, game_id)
            prev_status = None if record is None else record.status
            epoch = conn.execute(
                _TAKE_CLAIM, {"game_id": game_id, "job_id": job.job_id, "prev_status": prev_status}
            ).scalar_one()
        applied = JobOrder(StreamId(int(game.applied_ms), int(game.applied_seq)), str(game.applied_job_id))
        return Claim(job, int(epoch), record, applied)

    def release(self, claim: Claim) -> None:
        with translated_errors(self._url), self._engine.begin() as conn:
            conn.execute(_RELEASE, _claim_params(claim))

    def drop(self, claim: Claim) -> None:
        with translated_errors(self._url), self._engine.begin() as conn:
            conn.execute(_DEQUEUE, {"job_id": claim.job.job_id})
            conn.execute(_RELEASE, _claim_params(claim))
            conn.execute(_FORGET_IF_NO_HISTORY, {"game_id": claim.job.game_id})

    def mark(self, claim: Claim, status: RecordStatus) -> bool:
        with translated_errors(self._url), self._engine.begin() as conn:
            marked = conn.execute(_MARK, {**_claim_params(claim), "status": status.value}).one_or_none()
        return marked is not None

    def put_back(self, claim: Claim) -> bool:
        with translated_errors(self._url), self._engine.begin() as conn:
            return conn.execute(_PUT_BACK, _claim_params(claim)).one_or_none() is not None

    def finish(self, claim: Claim, job: FinishedJob) -> CommittedJob | None:
        game_id = claim.job.game_id
        with translated_errors(self._url), self._engine.connect() as conn, conn.begin() as tx:
            held = conn.execute(_CLAIM_OF, {"game_id": game_id}).one_or_none()
            if held is None or held.claim_job_id != claim.job.job_id or int(held.claim_epoch) != claim.epoch:
                tx.rollback()
                return None
            if job.record is not None:
                _write_record(conn, game_id, job.record)
            health = None if job.health_event is None else record_health_event(conn, job.health_event)
            conn.execute(_LOG, _log_params(game_id, job))
            fields = job.result.to_fields()
            row = conn.execute(_RESULT, {"game_id": game_id, "fields": json.dumps(fields)}).one()
            conn.execute(_DEQUEUE, {"job_id": claim.job.job_id})
            if job.order is not None:
                key, job_id = job.order
                conn.execute(_APPLIED, {"game_id": game_id, "ms": key.ms, "seq": key.seq, "job_id": job_id})
            conn.execute(_RELEASE, _claim_params(claim))
        entry = OutboxEntry(game_id, int(row.seq), fields, str(row.uid), str(row.prev_uid or ""))
        return CommittedJob(entry, health)

    def has_game(self, game_id: str) -> bool:
        with translated_errors(self._url), self._engine.connect() as conn:
            return bool(conn.execute(_HAS_GAME, {"game_id": game_id}).scalar_one())

    def finished_result(self, job_id: str) -> JobResult | None:
        with translated_errors(self._url), self._engine.connect() as conn:
            return _finished(conn, job_id)

    def known_jobs(self, job_ids: Sequence[str]) -> set[str]:
        if not job_ids:
            return set()
        with translated_errors(self._url), self._engine.connect() as conn:
            return {str(row.job_id) for row in conn.execute(_KNOWN, {"ids": list(job_ids)})}

    def log_outside_game(self, job: FinishedJob) -> tuple[JobResult, bool]:
        with translated_errors(self._url), self._engine.begin() as conn:
            logged = conn.execute(_LOG_ONCE, _log_params(job.result.game_id, job)).rowcount
            stored = _finished(conn, job.job_id)
        assert stored is not None  # just inserted, or there before
        return stored, bool(logged)

    def stale_claims(self, *, bound_seconds: float, limit: int) -> list[StaleClaim]:
        with translated_errors(self._url), self._engine.connect() as conn:
            rows = conn.execute(_STALE, {"bound": bound_seconds, "limit": limit}).all()
        return [
            StaleClaim(
                game_id=row.game_id,
                job_id=row.claim_job_id,
                kind=JobKind(row.kind),
                epoch=int(row.claim_epoch),
                claimed_ms=int(row.claimed_ms),
                image_ref=row.job_image_ref,
                record=None
                if row.status is None
                else RecordView(
                    row.status, row.current_container_id, row.image_ref, row.engine_endpoint, row.docker_host
                ),
                prev_status=row.claim_prev_status,
            )
            for row in rows
        ]

    def clear_stale(self, stale: StaleClaim, record: RecordView | None) -> bool:
        params = {"game_id": stale.game_id, "epoch": stale.epoch, "job_id": stale.job_id}
        with translated_errors(self._url), self._engine.connect() as conn, conn.begin() as tx:
            held = conn.execute(_CLAIM_OF, {"game_id": stale.game_id}).one_or_none()
            if held is None or held.claim_job_id != stale.job_id or int(held.claim_epoch) != stale.epoch:
                tx.rollback()
                return False
            if record is not None:
                _write_record(conn, stale.game_id, record)
            conn.execute(_CLEAR_STALE, params)
        return True

    def unclaimed_games(self, *, queued_before_seconds: float, limit: int) -> list[str]:
        with translated_errors(self._url), self._engine.connect() as conn:
            rows = conn.execute(_UNCLAIMED, {"seconds": queued_before_seconds, "limit": limit})
            return [str(row.game_id) for row in rows]

    def transitional(self) -> list[ClaimedRecord]:
        with translated_errors(self._url), self._engine.connect() as conn:
            rows = conn.execute(
                _TRANSITIONAL, {"starting": RecordStatus.STARTING.value, "stopping": RecordStatus.STOPPING.value}
            ).all()
        return [
            ClaimedRecord(
                row.game_id, row.status, row.claim_job_id, None if row.claimed_ms is None else int(row.claimed_ms)
            )
            for row in rows
        ]
