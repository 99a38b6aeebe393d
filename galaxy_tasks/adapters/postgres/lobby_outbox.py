"""The Lobby outbox: committed snapshots relayed from PostgreSQL to ``gm:lobby_events``.

A snapshot row is written in the same transaction as the record change it
reports, so a crash or a Redis outage can delay it but never lose it.  Rows
carry a per-game sequence number (``seq``), and Redis remembers per game the
highest number already appended (``PUBLISHED_KEY``), in the same Lua script
as the append: so no snapshot is ever appended twice, and per game the stream
order is the commit order.

Two ways out:

* right after its commit a task appends its own snapshots *without a lock or
  a database round trip*, but only those whose number is exactly the next one
  of their game; anything else (an earlier commit of the game not out yet) is
  left to the locked relay, so nothing overtakes;
* :meth:`relay_games` holds the games' cursor locks (no commit of theirs can
  happen meanwhile, so every number up to the newest is committed), appends
  whatever is past the mark in order, and deletes the rows it read.  The
  periodic relay calls it for every game with rows, which also clears the
  rows the fast path published.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis
from sqlalchemy import Engine, text

from galaxy_tasks.adapters.postgres.engine import translated_errors as pg_errors
from galaxy_tasks.adapters.redis.client import translated_errors as redis_errors
from galaxy_tasks.domain.gamemaster.records import QueuedSnapshot

LOBBY_STREAM = "gm:lobby_events"
PUBLISHED_KEY = "gamemaster:lobby_outbox:published_seq"

# KEYS: stream, published-seq hash.  ARGV: mode ("next" or "after"), then groups of
# game_id, seq, field_count, k1, v1, ...  "next" appends a snapshot only when it is the game's
# next number (unlocked fast path); "after" appends any number past the mark (locked relay).
# Returns the appended count followed by the games whose snapshots were left out of turn.
_APPEND = """
local strict = ARGV[1] == 'next'
local appended = 0
local out_of_turn = {}
local i = 2
while i <= #ARGV do
  local game, seq, n = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local high = tonumber(redis.call('HGET', KEYS[2], game) or '0')
  if seq == high + 1 or (seq > high and not strict) then
    redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 3, i + 2 + 2 * n))
    redis.call('HSET', KEYS[2], game, seq)
    appended = appended + 1
  elseif seq > high then
    out_of_turn[#out_of_turn + 1] = game
  end
  i = i + 3 + 2 * n
end
table.insert(out_of_turn, 1, appended)
return out_of_turn
"""

_LOCK_GAMES = """
SELECT game_id FROM gamemaster.health_event_cursors
WHERE game_id = ANY(CAST(:game_ids AS text[]))
ORDER BY game_id
FOR UPDATE{skip}
"""
_PENDING_ROWS = text(
    """
    SELECT id, game_id, seq, fields FROM gamemaster.lobby_outbox
    WHERE game_id = ANY(CAST(:game_ids AS text[]))
    ORDER BY game_id, seq
    """
)
_DELETE_ROWS = text("DELETE FROM gamemaster.lobby_outbox WHERE id = ANY(CAST(:ids AS bigint[]))")
_PENDING_GAMES = text(
    """
    SELECT game_id FROM gamemaster.lobby_outbox
    GROUP BY game_id ORDER BY min(id) LIMIT :limit
    """
)
_SEQ_RANGES = text("SELECT game_id, min(seq) AS low, max(seq) AS high FROM gamemaster.lobby_outbox GROUP BY game_id")


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

    def publish_committed(self, snapshots: Sequence[QueuedSnapshot]) -> tuple[int, list[str]]:
        if not snapshots:
            return 0, []
        argv: list[Any] = ["next"]
        for queued in snapshots:
            fields = queued.snapshot.to_fields()
            argv.extend((queued.game_id, queued.seq, len(fields)))
            for key, value in fields.items():
                argv.extend((key, value))
        with redis_errors(self._redis_url):
            reply = self._append(keys=[self._stream, PUBLISHED_KEY], args=argv)
        return int(reply[0]), sorted({str(game) for game in reply[1:]})

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
            argv: list[Any] = ["after"]
            for row in rows:
                fields = row.fields if isinstance(row.fields, dict) else json.loads(row.fields)
                argv.extend((row.game_id, row.seq, len(fields)))
                for key, value in fields.items():
                    argv.extend((key, value))
            with redis_errors(self._redis_url):
                appended = int(self._append(keys=[self._stream, PUBLISHED_KEY], args=argv)[0])
            conn.execute(_DELETE_ROWS, {"ids": [row.id for row in rows]})
        return appended

    def pending_games(self, limit: int) -> list[str]:
        with pg_errors(self._db_url), self._engine.connect() as conn:
            return [row.game_id for row in conn.execute(_PENDING_GAMES, {"limit": limit})]

    def backlog(self) -> int:
        """Rows not appended yet (rows appended right after commit stay until the relay clears them).

        A game's remaining rows are numbered without gaps (the relay deletes
        whole prefixes), so per game the unpublished ones are those above the mark.
        """
        with pg_errors(self._db_url), self._engine.connect() as conn:
            ranges = conn.execute(_SEQ_RANGES).all()
        if not ranges:
            return 0
        with redis_errors(self._redis_url):
            marks = self._r.hmget(PUBLISHED_KEY, [row.game_id for row in ranges])
        return sum(
            max(0, int(row.high) - max(int(mark or 0), int(row.low) - 1))
            for row, mark in zip(ranges, marks, strict=True)
        )
