"""The bench's direct access to PostgreSQL and Redis: set-up, reset, progress checks, results.

Only what an outside observer may do: the Runtime Manager's XADD, the Lobby's
XRANGE, and reads of the Game Master's rows.  Nothing here uses galaxy_tasks'
own adapters, so a slow adapter cannot hide in the measuring side.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from sqlalchemy import Engine, create_engine, make_url, text

HEALTH_STREAM = "runtime:health_events"
LOBBY_STREAM = "gm:lobby_events"
OFFSET_KEY = "gamemaster:stream_offsets:health_events"
APP_KEY_PATTERNS = ("gamemaster:*", "galaxy:*")
"""Keys of the pipeline's state (offset, bridge state, lease, relay marks); the broker's keys are left alone."""

_DONE = text(
    """
    SELECT count(*) FROM gamemaster.health_event_cursors AS c
    JOIN unnest(CAST(:game_ids AS text[]), CAST(:entry_ids AS text[])) AS v(game_id, entry_id)
      ON c.game_id = v.game_id AND c.last_entry_id = v.entry_id
    """
)


def database_url_for(admin_url: str, label: str) -> str:
    """A new, unique database name next to ``admin_url`` (created by ``migrate.upgrade``)."""
    name = f"galaxy_bench_{label}_{uuid.uuid4().hex[:8]}"
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@dataclass
class Stores:
    redis_url: str
    database_url: str

    def __post_init__(self) -> None:
        self.r: redis.Redis = redis.Redis.from_url(self.redis_url, decode_responses=True, socket_timeout=10)
        self.engine: Engine = create_engine(self.database_url, pool_size=2, max_overflow=2)

    def close(self) -> None:
        self.r.close()
        self.engine.dispose()

    # --- resetting between repetitions ----------------------------------------------------
    def reset(self) -> None:
        """Empty every Game Master table and the pipeline's Redis state (not the broker's)."""
        with self.engine.begin() as conn:
            tables = conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'gamemaster' ORDER BY tablename")
            ).scalars()
            names = ", ".join(f'gamemaster."{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
        keys: list[str] = [HEALTH_STREAM, LOBBY_STREAM]
        for pattern in APP_KEY_PATTERNS:
            keys.extend(cast(Iterable[str], self.r.scan_iter(match=pattern, count=1000)))
        if keys:
            self.r.delete(*keys)

    def add_games(self, game_ids: Sequence[str], *, status: str, current_turn: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO gamemaster.runtime_records (game_id, status, current_turn) "
                    "SELECT g, :s, :t FROM unnest(CAST(:g AS text[])) AS g"
                ),
                {"g": list(game_ids), "s": status, "t": current_turn},
            )
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE gamemaster.runtime_records"))

    # --- the Runtime Manager's side ----------------------------------------------------------
    def xadd_all(self, entries: Sequence[Mapping[str, str]], chunk: int = 2000) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(entries), chunk):
            pipe = self.r.pipeline(transaction=False)
            for fields in entries[start : start + chunk]:
                pipe.xadd(HEALTH_STREAM, dict(fields))  # type: ignore[arg-type]
            ids.extend(str(i) for i in pipe.execute())
        return ids

    # --- progress --------------------------------------------------------------------------
    def games_done(self, game_ids: Sequence[str], last_entries: Sequence[str]) -> int:
        """How many of ``game_ids`` have their cursor at the given entry."""
        with self.engine.connect() as conn:
            value = conn.execute(_DONE, {"game_ids": list(game_ids), "entry_ids": list(last_entries)}).scalar_one()
        return int(value)

    def offset(self) -> str | None:
        value = self.r.get(OFFSET_KEY)
        return None if value is None else str(value)

    # --- results ---------------------------------------------------------------------------
    def rows(self) -> dict[str, tuple[str, str, int]]:
        with self.engine.connect() as conn:
            result = conn.execute(
                text("SELECT game_id, status, engine_health, current_turn FROM gamemaster.runtime_records")
            ).all()
        return {row.game_id: (row.status, row.engine_health, row.current_turn) for row in result}

    def lobby_count(self) -> int:
        return int(cast(Any, self.r.xlen(LOBBY_STREAM)))

    def lobby_first_ms(self) -> dict[str, int]:
        """Per game, the Redis server time (ms, from the entry id) of its first ``gm:lobby_events`` entry."""
        out: dict[str, int] = {}
        start = "-"
        while True:
            page = cast(list[tuple[str, dict[str, str]]], self.r.xrange(LOBBY_STREAM, min=start, count=5000))
            if not page:
                return out
            for entry_id, fields in page:
                out.setdefault(fields["game_id"], int(entry_id.partition("-")[0]))
            start = f"({page[-1][0]}"

    def cursor_times_ms(self, game_ids: Sequence[str]) -> dict[str, float]:
        """Per game, the cursor's ``updated_at`` (PostgreSQL ``now()`` of the applying transaction) in ms."""
        with self.engine.connect() as conn:
            result = conn.execute(
                text(
                    "SELECT game_id, extract(epoch FROM updated_at) * 1000 AS ms "
                    "FROM gamemaster.health_event_cursors "
                    "WHERE game_id = ANY(CAST(:g AS text[])) AND last_entry_id IS NOT NULL"
                ),
                {"g": list(game_ids)},
            ).all()
        return {row.game_id: float(row.ms) for row in result}


def rows_digest(rows: Mapping[str, tuple[str, str, int]]) -> str:
    h = hashlib.sha256()
    for game_id in sorted(rows):
        status, health, turn = rows[game_id]
        h.update(f"{game_id}|{status}|{health}|{turn}\n".encode())
    return h.hexdigest()[:12]
