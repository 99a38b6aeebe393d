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
from dataclasses import replace
from typing import Any, cast

import redis
from sqlalchemy import Engine, text

from galaxy_tasks.adapters.postgres.engine import translated_errors as pg_errors
from galaxy_tasks.adapters.redis.client import translated_errors as redis_errors
from galaxy_tasks.domain.gamemaster.entries import FIELD_GAME_ID
from galaxy_tasks.domain.handoffs import Handoff, StreamEntry
from galaxy_tasks.domain.health_events import HEALTH_EVENT_FIELDS
from galaxy_tasks.domain.stream_fields import decode_entry_fields
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.ports.gamemaster import StalledGame

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
_CURSORS = (
    "SELECT game_id, last_entry_id, CAST(extract(epoch FROM now() - updated_at) * 1000 AS bigint) AS idle_ms "
    "FROM gamemaster.health_event_cursors"
)
_ALL_PARKED = text(
    "SELECT game_id, array_agg(entry_id) AS entry_ids, array_agg(prev_entry_id) AS prev_ids "
    "FROM gamemaster.health_event_parked GROUP BY game_id"
)
_PARKED_OF = text("SELECT entry_id, prev_entry_id, fields FROM gamemaster.health_event_parked WHERE game_id = :game_id")


def _applied(cursor: tuple[str | None, int] | None) -> str | None:
    return None if cursor is None else cursor[0]


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
        floor_key: str = "",
        floor_ttl_ms: int = 0,
        floor_count_limit: int = 0,
    ) -> None:
        """``raw_client`` returns bytes: the stream is read with it, decoded per field (SPEC §5 "Bad input").

        ``floor_key`` (a hash ``id``, ``entries_through``) is where :meth:`protect_unapplied` keeps the
        oldest entry a repair may still need, for ``floor_ttl_ms``; counting the entries after it
        reads at most ``floor_count_limit`` + 1 of them (the stream's trim length: past that the
        trim cannot reach the floor by length anyway, only by its id).
        """
        self._floor_key = floor_key
        self._floor_ttl_ms = floor_ttl_ms
        self._floor_count_limit = floor_count_limit
        self._engine = engine
        self._db_url = engine.url.render_as_string(hide_password=False)
        self._r = client
        self._raw = raw_client
        self._stream = stream
        self._handed_on_key = handed_on_key
        self._redis_url = redis_url
        self._kept: tuple[dict[str, tuple[str | None, int]], dict[str, str]] | None = None

    def stalled_games(self, cutoff_ms: int, limit: int) -> list[StalledGame]:
        age_ms = max(int(time.time() * 1000) - cutoff_ms, 0)  # what the caller means, free of its clock
        stalled: dict[str, StalledGame] = {}
        with pg_errors(self._db_url), self._engine.connect() as conn:
            for row in conn.execute(_OLD_PARKED, {"age_ms": age_ms, "limit": limit}):
                target = max(row.parked_ids, key=StreamId.parse)
                stalled[row.game_id] = StalledGame(row.game_id, row.last_entry_id, target, "parked")
        cursors, handed_on = self._cursors_and_handed_on(keep=False)
        with redis_errors(self._redis_url):
            first: Any = self._raw.xrange(self._stream, count=1)
            seconds, micros = self._r.time()
        cutoff_ms = int(seconds) * 1000 + int(micros) // 1000 - age_ms  # on Redis's clock, like the ids
        oldest = StreamId.parse(first[0][0].decode()) if first else None
        for game_id, game in list(stalled.items()):
            waited_for = self._waited_for(game)
            if waited_for is not None and (oldest is None or waited_for < oldest):
                stalled[game_id] = replace(game, gap=True)  # the entry its parked ones wait for is gone
        behind = [(g, last) for g, last in handed_on.items() if _applied(cursors.get(g)) != last]  # cheap first
        for game_id, last in sorted(behind):
            if len(stalled) >= limit:
                break
            if game_id in stalled or StreamId.parse(last).ms >= cutoff_ms:
                continue
            cursor = cursors.get(game_id)
            applied = _applied(cursor)
            gone = oldest is None or StreamId.parse(last) < oldest  # trimmed away before it was applied
            if gone and (applied is None or StreamId.parse(applied) < StreamId.parse(last)):
                stalled[game_id] = StalledGame(game_id, applied, last, "behind", gap=True)
                continue
            if cursor is not None and (
                cursor[1] <= age_ms  # not quiet for long enough
                or (applied is not None and StreamId.parse(applied) >= StreamId.parse(last))
            ):
                continue
            stalled[game_id] = StalledGame(game_id, applied, last, "behind")
        return list(stalled.values())

    def _waited_for(self, game: StalledGame) -> StreamId | None:
        """The entry the game's earliest parked entry names as its predecessor (not applied yet)."""
        parked = self.parked_of(game.game_id)
        if not parked:
            return None
        earliest = min(parked, key=lambda h: StreamId.parse(h.entry_id))
        if earliest.prev_entry_id is None:
            return None
        waited = StreamId.parse(earliest.prev_entry_id)
        if game.cursor is not None and waited <= StreamId.parse(game.cursor):
            return None
        return waited

    def protect_unapplied(self) -> str | None:
        """Keep, for the stream's trim, the oldest entry a repair may still re-read; ``None``: nothing.

        Per game that is behind what the bridge handed on (or has parked entries):
        the entry its cursor names (the repair re-reads after it), or without a
        cursor the oldest it is known to wait for.  Stored with the stream's
        entries-added count up to it (entries added minus those after it), so
        the trim compares lengths without reading entries.
        """
        if not self._floor_key:
            return None
        with pg_errors(self._db_url), self._engine.connect() as conn:
            parked = {row.game_id: [*row.entry_ids, *row.prev_ids] for row in conn.execute(_ALL_PARKED)}
        cursors, handed_on = self._cursors_and_handed_on(keep=True)
        candidates: list[StreamId] = []
        behind = [g for g, last in handed_on.items() if _applied(cursors.get(g)) != last]  # cheap first
        for game_id in {*behind, *parked}:
            cursor = _applied(cursors.get(game_id))
            last = handed_on.get(game_id)
            caught_up = (
                cursor is not None
                and last is not None
                and (
                    cursor == last or StreamId.parse(cursor) >= StreamId.parse(last)  # equal: the common case, unparsed
                )
            )
            if caught_up and not parked.get(game_id):
                continue
            if cursor is not None:
                candidates.append(StreamId.parse(cursor))
                continue
            known = [StreamId.parse(i) for i in [*parked.get(game_id, []), last] if i]
            if known:
                candidates.append(min(known))
        with redis_errors(self._redis_url):
            if not candidates:
                self._r.delete(self._floor_key)
                return None
            floor = str(min(candidates))
            pipe = self._raw.pipeline(transaction=True)
            pipe.xrange(self._stream, min=f"({floor}", max="+", count=self._floor_count_limit + 1)
            pipe.xinfo_stream(self._stream)
            try:
                after, info = pipe.execute()
            except redis.exceptions.ResponseError:
                return None  # no stream yet: nothing to trim
            through = int(info["entries-added"]) - len(after) if len(after) <= self._floor_count_limit else 0
            self._r.hset(self._floor_key, mapping={"id": floor, "entries_through": through})
            self._r.pexpire(self._floor_key, self._floor_ttl_ms)
        return floor

    def _cursors_and_handed_on(self, *, keep: bool) -> tuple[dict[str, tuple[str | None, int]], dict[str, str]]:
        """Every cursor (last applied entry, ms since it moved) and the bridge's handed-on map.

        Both grow with the games ever seen, so the rows come as plain tuples, and
        a repair run reads them once: :meth:`protect_unapplied` keeps its read
        (``keep``) for the :meth:`stalled_games` that follows it, which uses it up.
        """
        if self._kept is not None:
            kept, self._kept = self._kept, None
            if not keep:
                return kept
        with pg_errors(self._db_url), self._engine.connect() as conn:
            cursor = conn.connection.cursor()
            cursor.execute(_CURSORS)
            cursors = {game_id: (last, int(idle_ms)) for game_id, last, idle_ms in cursor.fetchall()}
            cursor.close()
        with redis_errors(self._redis_url):
            handed_on: dict[str, str] = cast(dict[str, str], self._r.hgetall(self._handed_on_key))
        if keep:
            self._kept = (cursors, handed_on)
        return cursors, handed_on

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
