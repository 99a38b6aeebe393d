"""The Game Master health consumer's unit of work on PostgreSQL.

The per-event task runs one of these per entry, so the common path is kept at
two round trips: ``BEGIN`` plus the statement that locks cursors and records
(and creates missing cursors), then one statement that writes records,
cursors and outbox rows followed by ``COMMIT``.  The connection runs in
autocommit mode so the driver adds no ``BEGIN`` of its own; the transaction
is ours, opened and closed inside those two round trips.  A third statement
reads the parking only for games whose cursor says something is parked.

Set-based statements (``unnest`` of arrays) keep a backlog chunk of a
thousand entries at the same handful of round trips.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Self

import sqlalchemy.exc
from sqlalchemy import Connection, Engine

from galaxy_tasks.adapters.postgres.engine import translated_errors
from galaxy_tasks.domain.game_ids import game_id_problem
from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.ports.gamemaster import ConsumerWrites, LockedGames
from galaxy_tasks.ports.outbox import OutboxEntry

_TRANSACTION_STATUS_IDLE = 0
"""``psycopg2.extensions.TRANSACTION_STATUS_IDLE``: no transaction open on the connection."""

# Cursors are locked (created if missing) before records: the record CTE reads the cursor CTE,
# so the planner cannot lock a record ahead of its cursor.  FOR UPDATE returns the newest
# committed version of each record even though the statement's snapshot predates the wait for
# the cursor lock (READ COMMITTED re-checks locked rows).
_BEGIN_AND_LOCK = """
BEGIN;
WITH cursors AS (
    INSERT INTO gamemaster.health_event_cursors (game_id)
    SELECT g FROM (
        SELECT g FROM unnest(CAST(%(game_ids)s AS text[])) AS g
        UNION ALL
        SELECT g FROM unnest(CAST(%(doubtful_ids)s AS text[])) AS g
        WHERE EXISTS (SELECT 1 FROM gamemaster.runtime_records AS r WHERE r.game_id = g)
           OR EXISTS (SELECT 1 FROM gamemaster.health_event_cursors AS c WHERE c.game_id = g)
    ) AS wanted ORDER BY g
    ON CONFLICT (game_id) DO UPDATE SET game_id = EXCLUDED.game_id
    RETURNING game_id, last_entry_id, last_published_summary, lobby_seq, parked_count, outbox_head
), records AS (
    SELECT r.game_id, r.status, r.engine_health, r.current_turn
    FROM gamemaster.runtime_records AS r
    WHERE r.game_id IN (SELECT game_id FROM cursors)
    ORDER BY r.game_id
    FOR UPDATE
)
SELECT c.game_id, c.last_entry_id, c.last_published_summary, c.lobby_seq, c.parked_count, c.outbox_head,
       r.game_id IS NOT NULL AS has_record, r.status, r.engine_health, r.current_turn
FROM cursors AS c LEFT JOIN records AS r ON r.game_id = c.game_id
ORDER BY c.game_id
"""
# A statement of its own, after the lock: a subquery of the locking statement would read the
# snapshot taken before it waited for the lock and miss an entry parked meanwhile.
_PARKED = """
SELECT game_id, entry_id, prev_entry_id, fields FROM gamemaster.health_event_parked
WHERE game_id = ANY(CAST(%(game_ids)s AS text[]))
"""
_PARK = """
INSERT INTO gamemaster.health_event_parked (game_id, entry_id, prev_entry_id, fields)
SELECT v.game_id, v.entry_id, v.prev_entry_id, CAST(v.fields AS jsonb)
FROM unnest(CAST(%(game_ids)s AS text[]), CAST(%(entry_ids)s AS text[]), CAST(%(prev_ids)s AS text[]),
            CAST(%(fields)s AS text[])) AS v(game_id, entry_id, prev_entry_id, fields)
ON CONFLICT (game_id, entry_id) DO UPDATE SET prev_entry_id = EXCLUDED.prev_entry_id
"""
_UNPARK = """
DELETE FROM gamemaster.health_event_parked AS p
USING unnest(CAST(%(game_ids)s AS text[]), CAST(%(entry_ids)s AS text[])) AS v(game_id, entry_id)
WHERE p.game_id = v.game_id AND p.entry_id = v.entry_id
"""
_RECOUNT_PARKED = """
UPDATE gamemaster.health_event_cursors AS c
SET parked_count = (SELECT count(*) FROM gamemaster.health_event_parked AS p WHERE p.game_id = c.game_id)
WHERE c.game_id = ANY(CAST(%(game_ids)s AS text[]))
"""
# Every data-modifying CTE runs to completion whether or not the final SELECT reads it; empty
# arrays make a CTE a no-op, so one statement serves every combination.
_WRITE_AND_COMMIT = """
WITH saved_records AS (
    UPDATE gamemaster.runtime_records AS r
    SET status = v.status, engine_health = v.engine_health,
        updated_at = to_timestamp(CAST(%(now_ms)s AS double precision) / 1000)
    FROM unnest(CAST(%(record_games)s AS text[]), CAST(%(statuses)s AS text[]), CAST(%(healths)s AS text[]))
         AS v(game_id, status, engine_health)
    WHERE r.game_id = v.game_id
), saved_cursors AS (
    UPDATE gamemaster.health_event_cursors AS c
    SET last_entry_id = v.last_entry_id, last_published_summary = v.summary, lobby_seq = v.lobby_seq,
        outbox_head = v.outbox_head, updated_at = now()
    FROM unnest(CAST(%(cursor_games)s AS text[]), CAST(%(entry_ids)s AS text[]), CAST(%(summaries)s AS text[]),
                CAST(%(lobby_seqs)s AS bigint[]), CAST(%(outbox_heads)s AS uuid[]))
         AS v(game_id, last_entry_id, summary, lobby_seq, outbox_head)
    WHERE c.game_id = v.game_id
), queued AS (
    INSERT INTO gamemaster.lobby_outbox (game_id, seq, uid, prev_uid, stream_entry_id, fields)
    SELECT v.game_id, v.seq, v.uid, v.prev_uid, v.entry_id, CAST(v.fields AS jsonb)
    FROM unnest(CAST(%(snapshot_games)s AS text[]), CAST(%(snapshot_seqs)s AS bigint[]),
                CAST(%(snapshot_uids)s AS uuid[]), CAST(%(snapshot_prevs)s AS uuid[]),
                CAST(%(snapshot_entries)s AS text[]), CAST(%(snapshot_fields)s AS text[]))
         AS v(game_id, seq, uid, prev_uid, entry_id, fields)
)
SELECT 1;
COMMIT
"""


class SqlAlchemyHealthConsumerUnitOfWork:
    """``HealthConsumerUnitOfWork`` on one PostgreSQL transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._url = engine.url.render_as_string(hide_password=False)
        self._conn: Connection | None = None
        self._errors: AbstractContextManager[None] | None = None
        self._outbox_heads: dict[str, str | None] = {}
        """Per locked game, the uid of its last Lobby outbox row: the next row links to it."""

    def __enter__(self) -> Self:
        # __exit__ never runs when __enter__ raises: a refused connection is translated here.
        with translated_errors(self._url):
            self._conn = self._engine.connect()
        self._errors = translated_errors(self._url)
        self._errors.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._conn is not None:
                self._rollback_if_open(self._conn)
                self._conn.close()
        except Exception:
            if exc is None:
                raise
        finally:
            self._conn = None
            errors, self._errors = self._errors, None
            if errors is not None:
                errors.__exit__(exc_type, exc, tb)

    @staticmethod
    def _rollback_if_open(conn: Connection) -> None:
        """End a transaction left open by an error between our BEGIN and COMMIT."""
        if conn.invalidated or conn.closed:
            return
        dbapi: Any = conn.connection.dbapi_connection
        if dbapi is not None and dbapi.get_transaction_status() != _TRANSACTION_STATUS_IDLE:
            conn.exec_driver_sql("ROLLBACK")

    def _run(self, sql: str, params: dict[str, Any]) -> Any:
        if self._conn is None:
            raise RuntimeError("unit of work used outside its 'with' block")
        return self._conn.exec_driver_sql(sql, params)

    def _begin_and_lock(self, game_ids: Sequence[str]) -> Any:
        """The first statement, on a fresh connection once more if the pooled one was dead.

        The engine does not ping on checkout (a round trip per task); a server
        restart is noticed here instead, before anything was done, so one
        reconnect is safe.  A second failure goes to the caller's retry.
        """
        doubtful = {game_id for game_id in game_ids if game_id_problem(game_id) is not None}
        params = {"game_ids": [g for g in game_ids if g not in doubtful], "doubtful_ids": sorted(doubtful)}
        try:
            return self._run(_BEGIN_AND_LOCK, params)
        except sqlalchemy.exc.DBAPIError as exc:
            if not exc.connection_invalidated or self._conn is None:
                raise
            self._conn.close()
            self._conn = None
            self._conn = self._engine.connect()
            return self._run(_BEGIN_AND_LOCK, params)

    def lock(self, game_ids: Sequence[str]) -> LockedGames:
        cursors: dict[str, ConsumerCursor] = {}
        records: dict[str, GameRecord] = {}
        with_parked: list[str] = []
        for row in self._begin_and_lock(game_ids):
            cursors[row.game_id] = ConsumerCursor(
                row.game_id, row.last_entry_id, row.last_published_summary, int(row.lobby_seq)
            )
            self._outbox_heads[row.game_id] = None if row.outbox_head is None else str(row.outbox_head)
            if row.has_record:
                records[row.game_id] = GameRecord(row.game_id, row.status, row.engine_health, row.current_turn)
            if row.parked_count:
                with_parked.append(row.game_id)
        parked: dict[str, list[Handoff]] = {}
        if with_parked:
            for row in self._run(_PARKED, {"game_ids": with_parked}):
                fields = row.fields if isinstance(row.fields, dict) else json.loads(row.fields)
                parked.setdefault(row.game_id, []).append(Handoff(row.entry_id, fields, row.prev_entry_id))
        return LockedGames(cursors, records, parked)

    def commit(self, writes: ConsumerWrites) -> list[OutboxEntry]:
        parking_changed = sorted({h.fields["game_id"] for h in writes.park} | {game_id for game_id, _ in writes.unpark})
        if writes.park:
            self._run(
                _PARK,
                {
                    "game_ids": [h.fields["game_id"] for h in writes.park],
                    "entry_ids": [h.entry_id for h in writes.park],
                    "prev_ids": [h.prev_entry_id for h in writes.park],
                    "fields": [json.dumps(h.fields) for h in writes.park],
                },
            )
        if writes.unpark:
            self._run(
                _UNPARK,
                {"game_ids": [g for g, _ in writes.unpark], "entry_ids": [e for _, e in writes.unpark]},
            )
        if parking_changed:
            self._run(_RECOUNT_PARKED, {"game_ids": parking_changed})
        heads = dict(self._outbox_heads)
        entries: list[OutboxEntry] = []
        for snapshot in writes.snapshots:
            uid = str(uuid.uuid4())
            prev = heads.get(snapshot.game_id)
            heads[snapshot.game_id] = uid
            fields = snapshot.snapshot.to_fields()
            source = snapshot.stream_entry_id
            entries.append(OutboxEntry(snapshot.game_id, snapshot.seq, fields, uid, prev or "", source))
        self._run(
            _WRITE_AND_COMMIT,
            {
                "now_ms": writes.now_ms,
                "record_games": [r.game_id for r in writes.records],
                "statuses": [r.status for r in writes.records],
                "healths": [r.engine_health for r in writes.records],
                "cursor_games": [c.game_id for c in writes.cursors],
                "entry_ids": [c.last_entry_id for c in writes.cursors],
                "summaries": [c.last_published_summary for c in writes.cursors],
                "lobby_seqs": [c.lobby_seq for c in writes.cursors],
                "outbox_heads": [heads.get(c.game_id) for c in writes.cursors],
                "snapshot_games": [e.game_id for e in entries],
                "snapshot_seqs": [e.seq for e in entries],
                "snapshot_uids": [e.uid for e in entries],
                "snapshot_prevs": [e.prev_uid or None for e in entries],
                "snapshot_entries": [s.stream_entry_id for s in writes.snapshots],
                "snapshot_fields": [json.dumps(e.fields) for e in entries],
            },
        )
        self._outbox_heads = heads
        return entries
