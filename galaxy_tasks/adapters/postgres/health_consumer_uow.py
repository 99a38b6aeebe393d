"""The Game Master health consumer's unit of work on PostgreSQL.

Set-based statements (``unnest`` of arrays) keep a chunk of a thousand
entries at a handful of round trips, the same code path as a single entry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine, RootTransaction, text

from galaxy_tasks.adapters.postgres.engine import translated_errors
from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord, LobbySnapshot
from galaxy_tasks.ports import Handoff

_LOCK_CURSORS = text(
    """
    INSERT INTO gamemaster.health_event_cursors (game_id)
    SELECT g FROM unnest(CAST(:game_ids AS text[])) AS g ORDER BY g
    ON CONFLICT (game_id) DO UPDATE SET game_id = EXCLUDED.game_id
    RETURNING game_id, last_entry_id, last_published_summary
    """
)
_PARKED = text(
    """
    SELECT game_id, entry_id, prev_entry_id, fields FROM gamemaster.health_event_parked
    WHERE game_id = ANY(CAST(:game_ids AS text[]))
    """
)
_PARK = text(
    """
    INSERT INTO gamemaster.health_event_parked (game_id, entry_id, prev_entry_id, fields)
    SELECT v.game_id, v.entry_id, v.prev_entry_id, CAST(v.fields AS jsonb)
    FROM unnest(CAST(:game_ids AS text[]), CAST(:entry_ids AS text[]), CAST(:prev_ids AS text[]),
                CAST(:fields AS text[])) AS v(game_id, entry_id, prev_entry_id, fields)
    ON CONFLICT (game_id, entry_id) DO UPDATE SET prev_entry_id = EXCLUDED.prev_entry_id
    """
)
_UNPARK = text(
    """
    DELETE FROM gamemaster.health_event_parked AS p
    USING unnest(CAST(:game_ids AS text[]), CAST(:entry_ids AS text[])) AS v(game_id, entry_id)
    WHERE p.game_id = v.game_id AND p.entry_id = v.entry_id
    """
)
_LOCK_RECORDS = text(
    """
    SELECT game_id, status, engine_health, current_turn
    FROM gamemaster.runtime_records
    WHERE game_id = ANY(CAST(:game_ids AS text[]))
    ORDER BY game_id
    FOR UPDATE
    """
)
_SAVE_RECORDS = text(
    """
    UPDATE gamemaster.runtime_records AS r
    SET status = v.status, engine_health = v.engine_health,
        updated_at = to_timestamp(CAST(:now_ms AS double precision) / 1000)
    FROM unnest(CAST(:game_ids AS text[]), CAST(:statuses AS text[]), CAST(:healths AS text[]))
         AS v(game_id, status, engine_health)
    WHERE r.game_id = v.game_id
    """
)
_SAVE_CURSORS = text(
    """
    UPDATE gamemaster.health_event_cursors AS c
    SET last_entry_id = v.last_entry_id, last_published_summary = v.summary, updated_at = now()
    FROM unnest(CAST(:game_ids AS text[]), CAST(:entry_ids AS text[]), CAST(:summaries AS text[]))
         AS v(game_id, last_entry_id, summary)
    WHERE c.game_id = v.game_id
    """
)
_ENQUEUE = text(
    """
    INSERT INTO gamemaster.lobby_outbox (game_id, stream_entry_id, fields)
    SELECT v.game_id, v.entry_id, CAST(v.fields AS jsonb)
    FROM unnest(CAST(:game_ids AS text[]), CAST(:entry_ids AS text[]), CAST(:fields AS text[]))
         WITH ORDINALITY AS v(game_id, entry_id, fields, position)
    ORDER BY v.position
    """
)


class SqlAlchemyHealthConsumerUnitOfWork:
    """``HealthConsumerUnitOfWork`` on one PostgreSQL transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None
        self._errors: AbstractContextManager[None] | None = None

    def __enter__(self) -> Self:
        url = self._engine.url.render_as_string(hide_password=False)
        # __exit__ never runs when __enter__ raises: a refused connection is translated here.
        with translated_errors(url):
            self._conn = self._engine.connect()
            try:
                self._tx = self._conn.begin()
            except BaseException:
                self._conn.close()
                self._conn = None
                raise
        self._errors = translated_errors(url)
        self._errors.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tx is not None and self._tx.is_active:
                self._tx.rollback()
            if self._conn is not None:
                self._conn.close()
        except Exception:
            if exc is None:
                raise
        finally:
            self._conn = self._tx = None
            errors, self._errors = self._errors, None
            if errors is not None:
                errors.__exit__(exc_type, exc, tb)

    @property
    def _c(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("unit of work used outside its 'with' block")
        return self._conn

    def lock_cursors(self, game_ids: Sequence[str]) -> dict[str, ConsumerCursor]:
        rows = self._c.execute(_LOCK_CURSORS, {"game_ids": list(game_ids)})
        return {row.game_id: ConsumerCursor(row.game_id, row.last_entry_id, row.last_published_summary) for row in rows}

    def parked_entries(self, game_ids: Sequence[str]) -> dict[str, list[Handoff]]:
        # A statement of its own, after the lock: a subquery of the locking statement would read
        # the snapshot taken before it waited for the lock and miss an entry parked meanwhile.
        parked: dict[str, list[Handoff]] = {}
        for row in self._c.execute(_PARKED, {"game_ids": list(game_ids)}):
            fields = row.fields if isinstance(row.fields, dict) else json.loads(row.fields)
            parked.setdefault(row.game_id, []).append(Handoff(row.entry_id, fields, row.prev_entry_id))
        return parked

    def park(self, handoffs: Sequence[Handoff]) -> None:
        if not handoffs:
            return
        self._c.execute(
            _PARK,
            {
                "game_ids": [h.fields["game_id"] for h in handoffs],
                "entry_ids": [h.entry_id for h in handoffs],
                "prev_ids": [h.prev_entry_id for h in handoffs],
                "fields": [json.dumps(h.fields) for h in handoffs],
            },
        )

    def unpark(self, keys: Sequence[tuple[str, str]]) -> None:
        if not keys:
            return
        self._c.execute(_UNPARK, {"game_ids": [g for g, _ in keys], "entry_ids": [e for _, e in keys]})

    def lock_records(self, game_ids: Sequence[str]) -> dict[str, GameRecord]:
        rows = self._c.execute(_LOCK_RECORDS, {"game_ids": list(game_ids)})
        return {row.game_id: GameRecord(row.game_id, row.status, row.engine_health, row.current_turn) for row in rows}

    def save_records(self, records: Sequence[GameRecord], now_ms: int) -> None:
        if not records:
            return
        self._c.execute(
            _SAVE_RECORDS,
            {
                "now_ms": now_ms,
                "game_ids": [r.game_id for r in records],
                "statuses": [r.status for r in records],
                "healths": [r.engine_health for r in records],
            },
        )

    def save_cursors(self, cursors: Sequence[ConsumerCursor]) -> None:
        if not cursors:
            return
        self._c.execute(
            _SAVE_CURSORS,
            {
                "game_ids": [c.game_id for c in cursors],
                "entry_ids": [c.last_entry_id for c in cursors],
                "summaries": [c.last_published_summary for c in cursors],
            },
        )

    def enqueue_snapshots(self, snapshots: Sequence[tuple[str, LobbySnapshot]]) -> None:
        if not snapshots:
            return
        self._c.execute(
            _ENQUEUE,
            {
                "game_ids": [s.game_id for _, s in snapshots],
                "entry_ids": [entry_id for entry_id, _ in snapshots],
                "fields": [json.dumps(s.to_fields()) for _, s in snapshots],
            },
        )

    def commit(self) -> None:
        if self._tx is None:
            raise RuntimeError("unit of work used outside its 'with' block")
        self._tx.commit()
