"""Finding stalled games (PostgreSQL + the bridge's map in Redis) and re-reading their entries.

"Older than the cutoff" is judged on each backend's own clock: the age the
caller means (its now minus its cutoff) is taken from PostgreSQL's ``now()``
for parking and cursor times, and from Redis's ``TIME`` for stream ids (which
Redis stamps).  A worker whose clock is off by seconds then repairs neither
early nor late.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from sqlalchemy import Engine, text

from galaxy_tasks.adapters.postgres.engine import translated_errors as pg_errors
from galaxy_tasks.adapters.redis.client import translated_errors as redis_errors
from galaxy_tasks.domain.gamemaster.entries import FIELD_GAME_ID
from galaxy_tasks.domain.health_events import HEALTH_EVENT_FIELDS
from galaxy_tasks.domain.stream_fields import decode_entry_fields
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.ports import Handoff, StreamEntry
from galaxy_tasks.service.order_repair import StalledGame

_PAGE = 1000

_OLD_PARKED = text(
    """
    SELECT p.game_id, c.last_entry_id, array_agg(p.entry_id) AS parked_ids
    FROM gamemaster.health_event_parked AS p
    LEFT JOIN gamemaster.health_event_cursors AS c USING (game_id)
    GROUP BY p.game_id, c.last_entry_id
    HAVING min(p.parked_at) < now() - make_interval(secs => CAST(:age_ms AS double precision) / 1000)
    LIMIT :limit
    """
)
_CURSORS = text(
    """
    SELECT game_id, last_entry_id,
           updated_at < now() - make_interval(secs => CAST(:age_ms AS double precision) / 1000) AS quiet
    FROM gamemaster.health_event_cursors
    """
)
_PARKED_OF = text("SELECT entry_id, prev_entry_id, fields FROM gamemaster.health_event_parked WHERE game_id = :game_id")


class PostgresRedisOrderRepairStore:
    def __init__(
        self,
        engine: Engine,
        client: redis.Redis,
        raw_client: redis.Redis,
        *,
        stream: str,
        handed_on_key: str,
        redis_url: str,
    ) -> None:
        """``raw_client`` returns bytes: the stream is read with it, decoded per field (SPEC §5 "Bad input")."""
        self._engine = engine
        self._db_url = engine.url.render_as_string(hide_password=False)
        self._r = client
        self._raw = raw_client
        self._stream = stream
        self._handed_on_key = handed_on_key
        self._redis_url = redis_url

    def stalled_games(self, cutoff_ms: int, limit: int) -> list[StalledGame]:
        age_ms = max(int(time.time() * 1000) - cutoff_ms, 0)  # what the caller means, free of its clock
        stalled: dict[str, StalledGame] = {}
        with pg_errors(self._db_url), self._engine.connect() as conn:
            for row in conn.execute(_OLD_PARKED, {"age_ms": age_ms, "limit": limit}):
                target = max(row.parked_ids, key=StreamId.parse)
                stalled[row.game_id] = StalledGame(row.game_id, row.last_entry_id, target, "parked")
            cursors = {row.game_id: row for row in conn.execute(_CURSORS, {"age_ms": age_ms})}
        with redis_errors(self._redis_url):
            handed_on: Any = self._r.hgetall(self._handed_on_key)
            first: Any = self._raw.xrange(self._stream, count=1)
            seconds, micros = self._r.time()
        cutoff_ms = int(seconds) * 1000 + int(micros) // 1000 - age_ms  # on Redis's clock, like the ids
        oldest = StreamId.parse(first[0][0].decode()) if first else None
        for game_id, last in sorted(handed_on.items()):
            if len(stalled) >= limit:
                break
            if game_id in stalled or StreamId.parse(last).ms >= cutoff_ms:
                continue
            if oldest is None or StreamId.parse(last) < oldest:
                continue  # trimmed away before it was applied: nothing left to repair from (the bridge said so)
            cursor = cursors.get(game_id)
            if cursor is not None and (
                not cursor.quiet
                or (cursor.last_entry_id is not None and StreamId.parse(cursor.last_entry_id) >= StreamId.parse(last))
            ):
                continue
            stalled[game_id] = StalledGame(game_id, None if cursor is None else cursor.last_entry_id, last, "behind")
        return list(stalled.values())

    def parked_of(self, game_id: str) -> list[Handoff]:
        with pg_errors(self._db_url), self._engine.connect() as conn:
            rows = conn.execute(_PARKED_OF, {"game_id": game_id}).all()
        return [
            Handoff(
                row.entry_id, row.fields if isinstance(row.fields, dict) else json.loads(row.fields), row.prev_entry_id
            )
            for row in rows
        ]

    def entries_of_game(self, game_id: str, after: str | None, through: str) -> list[StreamEntry]:
        found: list[StreamEntry] = []
        start = "-" if after is None else f"({after}"
        with redis_errors(self._redis_url):
            while True:
                page: Any = self._raw.xrange(self._stream, min=start, max=through, count=_PAGE)
                if not page:
                    break
                for raw_id, raw_fields in page:
                    fields = decode_entry_fields(raw_fields, HEALTH_EVENT_FIELDS)
                    if fields.get(FIELD_GAME_ID) == game_id:
                        found.append(StreamEntry(raw_id.decode(), fields))
                if len(page) < _PAGE:
                    break
                start = f"({page[-1][0].decode()}"
        return found
