"""The Lobby outbox: committed snapshots relayed from PostgreSQL to ``gm:lobby_events``.

A snapshot row is written in the same transaction as the record change it
reports, so a crash or a Redis outage can delay it but never lose it.  The
relay holds the game's cursor row lock while it appends, so per game the
stream order is the commit order; the append itself is a Lua script that
remembers, per game, the highest outbox id already appended, so a relay that
dies after appending but before deleting its rows appends nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis
from sqlalchemy import Engine, text

from galaxy_tasks.adapters.postgres.engine import translated_errors as pg_errors
from galaxy_tasks.adapters.redis.client import translated_errors as redis_errors

LOBBY_STREAM = "gm:lobby_events"
RELAYED_KEY = "gamemaster:lobby_outbox:relayed"

# ARGV: groups of game_id, outbox_id, field_count, k1, v1, ...
_APPEND = """
local appended = 0
local i = 1
while i <= #ARGV do
  local game, id, n = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local high = tonumber(redis.call('HGET', KEYS[2], game) or '0')
  if id > high then
    redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 3, i + 2 + 2 * n))
    redis.call('HSET', KEYS[2], game, id)
    appended = appended + 1
  end
  i = i + 3 + 2 * n
end
return appended
"""

_LOCK_GAMES = """
SELECT game_id FROM gamemaster.health_event_cursors
WHERE game_id = ANY(CAST(:game_ids AS text[]))
ORDER BY game_id
FOR UPDATE{skip}
"""
_PENDING_ROWS = text(
    """
    SELECT id, game_id, fields FROM gamemaster.lobby_outbox
    WHERE game_id = ANY(CAST(:game_ids AS text[]))
    ORDER BY id
    """
)
_DELETE_ROWS = text("DELETE FROM gamemaster.lobby_outbox WHERE id = ANY(CAST(:ids AS bigint[]))")
_PENDING_GAMES = text(
    """
    SELECT game_id FROM gamemaster.lobby_outbox
    GROUP BY game_id ORDER BY min(id) LIMIT :limit
    """
)
_BACKLOG = text("SELECT count(*) FROM gamemaster.lobby_outbox")


class PostgresLobbyOutbox:
    """``LobbyOutbox`` on ``gamemaster.lobby_outbox`` and the ``gm:lobby_events`` stream."""

    def __init__(self, engine: Engine, client: redis.Redis, redis_url: str, stream: str = LOBBY_STREAM) -> None:
        self._engine = engine
        self._db_url = engine.url.render_as_string(hide_password=False)
        self._r = client
        self._redis_url = redis_url
        self._stream = stream
        self._append = client.register_script(_APPEND)
        self._lock_wait = text(_LOCK_GAMES.format(skip=""))
        self._lock_skip = text(_LOCK_GAMES.format(skip=" SKIP LOCKED"))

    def relay_games(self, game_ids: Sequence[str], *, wait_for_locks: bool) -> int:
        if not game_ids:
            return 0
        with pg_errors(self._db_url), self._engine.connect() as conn, conn.begin():
            lock = self._lock_wait if wait_for_locks else self._lock_skip
            locked = [row.game_id for row in conn.execute(lock, {"game_ids": sorted(set(game_ids))})]
            if not locked:
                return 0
            rows = conn.execute(_PENDING_ROWS, {"game_ids": locked}).all()
            if not rows:
                return 0
            argv: list[Any] = []
            for row in rows:
                fields = row.fields if isinstance(row.fields, dict) else json.loads(row.fields)
                argv.extend((row.game_id, row.id, len(fields)))
                for key, value in fields.items():
                    argv.extend((key, value))
            with redis_errors(self._redis_url):
                appended = int(self._append(keys=[self._stream, RELAYED_KEY], args=argv))
            conn.execute(_DELETE_ROWS, {"ids": [row.id for row in rows]})
        return appended

    def pending_games(self, limit: int) -> list[str]:
        with pg_errors(self._db_url), self._engine.connect() as conn:
            return [row.game_id for row in conn.execute(_PENDING_GAMES, {"limit": limit})]

    def backlog(self) -> int:
        with pg_errors(self._db_url), self._engine.connect() as conn:
            return int(conn.execute(_BACKLOG).scalar_one())
