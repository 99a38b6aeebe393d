"""Transactional outboxes from PostgreSQL to Redis streams, numbered per game.

A row is written in the same transaction as the change it reports, so a
crash or a Redis outage can delay it but never lose it.  Rows carry a
per-game sequence number (``seq``) given out under a per-game row lock (the
*lock table*: the GM's cursor, the RTM's health snapshot), and Redis
remembers per game the highest number already appended (the *mark*), in the
same Lua script as the ``XADD``: so no entry is ever appended twice, and per
game the stream order is the commit order.

Two ways out:

* right after its commit a task appends its own entries *without a lock or a
  database round trip*, but only those whose number is exactly the next one of
  their game; anything else (an earlier commit of the game not out yet) is
  left to the locked relay, so nothing overtakes;
* :meth:`PostgresStreamOutbox.relay_games` holds the games' lock-table rows (no
  commit of theirs can happen meanwhile, so every number up to the newest is
  committed), appends whatever is past the mark in order, and deletes the rows
  it read.  The periodic relay calls it for every game with rows, which also
  clears the rows the fast path published.

A stream may be bounded: after appending, the script trims it to about
``maxlen`` entries, but never past the id stored under ``guard_key`` (the
stored offset of the stream's consumer), so nothing unconsumed is trimmed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import Engine, text

from galaxy_tasks.adapters.postgres.engine import translated_errors as pg_errors
from galaxy_tasks.adapters.redis.client import translated_errors as redis_errors
from galaxy_tasks.ports import OutboxEntry

# KEYS: stream, mark hash, guard key and the consumer's progress hash (both may be absent).
# ARGV: mode ("next" or "after"), maxlen
# (0: unbounded), then groups of game_id, seq, field_count, k1, v1, ...  "next" appends an entry
# only when it is its game's next number (unlocked fast path); "after" any number past the mark
# (locked relay).  Returns the appended count followed by the games left out of turn.
_APPEND = """
local strict = ARGV[1] == 'next'
local maxlen = tonumber(ARGV[2])
local appended = 0
local out_of_turn = {}
local i = 3
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
if maxlen > 0 and appended > 0 and redis.call('XLEN', KEYS[1]) - maxlen > math.floor(maxlen / 10) then
  -- Trim, never past the consumer's offset, at a cost that does not grow with its lag: no entry is
  -- read.  Entries after the offset = entries ever added - entries added up to the offset (the
  -- consumer saves that count with its offset).  When they fit in maxlen, MAXLEN keeps the newest
  -- maxlen, so all of them; otherwise MINID drops only what the consumer passed (it keeps the
  -- offset's entry itself).  While the count is unknown (an offset set by hand, a replay before the
  -- consumer's next save) nothing is trimmed.
  local guard = KEYS[3] and redis.call('GET', KEYS[3])
  if guard then  -- without an offset the consumer has not started: it has consumed nothing yet
    local lag = nil
    if KEYS[4] then
      local progress = redis.call('HMGET', KEYS[4], 'offset', 'entries_through_offset')
      if progress[1] == guard and progress[2] then
        local info = redis.call('XINFO', 'STREAM', KEYS[1])
        for j = 1, #info, 2 do
          if info[j] == 'entries-added' then lag = info[j + 1] - tonumber(progress[2]) end
        end
      end
    end
    if lag ~= nil and lag <= maxlen then
      redis.call('XTRIM', KEYS[1], 'MAXLEN', maxlen)
    elseif lag ~= nil then
      redis.call('XTRIM', KEYS[1], 'MINID', guard)
    end
  end
end
table.insert(out_of_turn, 1, appended)
return out_of_turn
"""


@dataclass(frozen=True)
class OutboxSpec:
    """Where one outbox lives and where it goes."""

    table: str
    """Qualified outbox table with ``id``, ``game_id``, ``seq``, ``fields`` (jsonb)."""
    lock_table: str
    """Qualified table with one row per game, locked by every transaction that numbers rows."""
    stream: str
    mark_key: str
    """Redis hash: per game, the highest number already appended."""
    maxlen: int = 0
    """Trim the stream to about this many entries after appending (0: never)."""
    guard_key: str = ""
    """Redis key holding the consumer's stored offset: trimming never passes it."""
    guard_progress_key: str = ""
    """Redis hash where the consumer keeps ``offset`` and ``entries_through_offset`` (the stream's
    entries-added count up to it): trimming learns the consumer's lag from it without reading entries."""


class PostgresStreamOutbox:
    """``StreamOutbox`` for one :class:`OutboxSpec`."""

    def __init__(
        self, engine: Engine, client: redis.Redis, redis_url: str, spec: OutboxSpec, *, durable_after_ms: int = 3000
    ) -> None:
        """``durable_after_ms``: how long after an append Redis is trusted to have it on disk (rows wait that long)."""
        self._durable_after_ms = durable_after_ms
        self._durable_key = f"{spec.mark_key}:durable"
        self._engine = engine
        self._db_url = engine.url.render_as_string(hide_password=False)
        self._r = client
        self._redis_url = redis_url
        self.spec = spec
        self._append = client.register_script(_APPEND)
        lock = (
            f"SELECT game_id FROM {spec.lock_table} "
            "WHERE game_id = ANY(CAST(:game_ids AS text[])) ORDER BY game_id FOR UPDATE"
        )
        self._lock_wait = text(lock)
        self._lock_skip = text(f"{lock} SKIP LOCKED")
        self._pending_rows = text(
            f"SELECT id, game_id, seq, fields FROM {spec.table} "
            "WHERE game_id = ANY(CAST(:game_ids AS text[])) ORDER BY game_id, seq"
        )
        self._delete_rows = text(f"DELETE FROM {spec.table} WHERE id = ANY(CAST(:ids AS bigint[]))")
        self._pending_games = text(f"SELECT game_id FROM {spec.table} GROUP BY game_id ORDER BY min(id) LIMIT :limit")
        self._seq_ranges = text(f"SELECT game_id, min(seq) AS low, max(seq) AS high FROM {spec.table} GROUP BY game_id")

    def _run_append(self, mode: str, entries: Sequence[tuple[str, int, dict[str, str]]]) -> list[Any]:
        argv: list[Any] = [mode, self.spec.maxlen]
        for game_id, seq, fields in entries:
            argv.extend((game_id, seq, len(fields)))
            for key, value in fields.items():
                argv.extend((key, value))
        guards = [self.spec.guard_key, self.spec.guard_progress_key] if self.spec.guard_key else []
        keys = [self.spec.stream, self.spec.mark_key, *[key for key in guards if key]]
        with redis_errors(self._redis_url):
            return list(self._append(keys=keys, args=argv))

    def publish_committed(self, entries: Sequence[OutboxEntry]) -> tuple[int, list[str]]:
        if not entries:
            return 0, []
        reply = self._run_append("next", [(e.game_id, e.seq, dict(e.fields)) for e in entries])
        return int(reply[0]), sorted({str(game) for game in reply[1:]})

    def relay_games(self, game_ids: Sequence[str], *, wait_for_locks: bool) -> int:
        if not game_ids:
            return 0
        with pg_errors(self._db_url), self._engine.connect() as conn, conn.begin():
            lock = self._lock_wait if wait_for_locks else self._lock_skip
            locked = [row.game_id for row in conn.execute(lock, {"game_ids": sorted(set(game_ids))})]
            if not locked:
                return 0
            rows = conn.execute(self._pending_rows, {"game_ids": locked}).all()
            if not rows:
                return 0
            entries = [
                (row.game_id, int(row.seq), row.fields if isinstance(row.fields, dict) else json.loads(row.fields))
                for row in rows
            ]
            appended = int(self._run_append("after", entries)[0])
            durable = self._durable_through(locked)
            ids = [row.id for row in rows if int(row.seq) <= durable.get(row.game_id, 0)]
            if ids:
                conn.execute(self._delete_rows, {"ids": ids})
        return appended

    def _durable_through(self, game_ids: Sequence[str]) -> dict[str, int]:
        """Per game, the highest number whose append Redis has certainly made durable.

        A row is deleted only once its entry is durable, or a Redis crash (with
        ``appendfsync everysec``, up to a second of writes) could take the entry
        while its row is gone.  Redis 7.0 has no ``WAITAOF``, so age stands in:
        a checkpoint ``seq:time`` per game (Redis's own clock) records the mark
        at a moment; once ``durable_after_ms`` has passed, everything up to that
        mark is on disk, and the checkpoint moves on to the current mark.
        """
        with redis_errors(self._redis_url):
            seconds, micros = self._r.time()
            now = int(seconds) * 1000 + int(micros) // 1000
            marks = self._r.hmget(self.spec.mark_key, list(game_ids))
            checks = self._r.hmget(self._durable_key, list(game_ids))
            durable: dict[str, int] = {}
            moved: dict[Any, Any] = {}
            for game_id, mark, check in zip(game_ids, marks, checks, strict=True):
                seq, at = (int(part) for part in str(check).split(":")) if check else (0, 0)
                due = check is None or at <= now - self._durable_after_ms
                if check is not None and due:
                    durable[game_id] = seq
                if due:
                    moved[game_id] = f"{int(mark or 0)}:{now}"
            if moved:
                self._r.hset(self._durable_key, mapping=moved)
        return durable

    def pending_games(self, limit: int) -> list[str]:
        with pg_errors(self._db_url), self._engine.connect() as conn:
            return [row.game_id for row in conn.execute(self._pending_games, {"limit": limit})]

    def backlog(self) -> int:
        """Rows not appended yet (rows appended right after commit stay until the relay clears them).

        A game's remaining rows are numbered without gaps (the relay deletes
        whole prefixes), so per game the unpublished ones are those above the mark.
        """
        with pg_errors(self._db_url), self._engine.connect() as conn:
            ranges = conn.execute(self._seq_ranges).all()
        if not ranges:
            return 0
        with redis_errors(self._redis_url):
            marks = self._r.hmget(self.spec.mark_key, [row.game_id for row in ranges])
        return sum(
            max(0, int(row.high) - max(int(mark or 0), int(row.low) - 1))
            for row, mark in zip(ranges, marks, strict=True)
        )
