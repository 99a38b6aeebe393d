"""Transactional outboxes from PostgreSQL to Redis streams, numbered per game.

A row is written in the same transaction as the change it reports, so a
crash or a Redis outage can delay it but never lose it.  Rows carry a
per-game sequence number (``seq``) given out under a per-game row lock (the
*lock table*: the GM's cursor, the RTM's health snapshot, the game's job
row), a random identity (``uid``) and the identity of the game's row before
(``prev_uid``): a chain.  Redis remembers per game the last row appended (the
*mark*, ``seq:uid``), in the same Lua script as the ``XADD``: so no entry is
ever appended twice, and per game the stream order is the commit order.

Numbers alone would not do: a database restored from a dump, a failover to a
standby that missed the newest commits, a downgrade that dropped the tables
all give out numbers that were appended once already, and a new row would look
published (and be deleted).  Identities never repeat: "next" is the row whose
predecessor is the mark's row, and when the relay finds neither the mark's
row nor its successor among a game's rows, those rows are of another
generation of the database and all of them are appended (at least once: a
row the old generation had appended may come again), and reported.

Two ways out:

* right after its commit a task appends its own entries *without a lock or a
  database round trip*, but only those whose predecessor is the mark's row;
  anything else (an earlier commit of the game not out yet) is left to the
  locked relay, so nothing overtakes;
* :meth:`PostgresStreamOutbox.relay_games` holds the games' lock-table rows (no
  commit of theirs can happen meanwhile, so every row up to the newest is
  committed), appends whatever follows the mark in order, and deletes the rows
  it read once Redis has them on disk.  The periodic sweep reads the outbox a
  page at a time without locks (:meth:`PostgresStreamOutbox.scan_page`) and
  calls it only for the games with rows to append or rows durable enough to
  delete: a row the fast path published costs the sweep a read until its
  checkpoint is due, then one locked visit that deletes it.

A stream may be bounded: after appending, the script trims it to about
``maxlen`` entries, but never past the id stored under ``guard_key`` (the
stored offset of the stream's consumer), so nothing unconsumed is trimmed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import Connection, Engine, text

from galaxy_tasks.adapters.postgres.engine import translated_errors as pg_errors
from galaxy_tasks.adapters.redis.client import translated_errors as redis_errors
from galaxy_tasks.ports.outbox import OutboxEntry, OutboxPage, RetentionReport

# KEYS: stream, mark hash, durability checkpoint hash, then the guard key, the consumer's progress hash
# and its repair floor (all three may be absent).
# ARGV: mode ("next" or "after"), maxlen (0: unbounded), then per entry: game_id, seq, uid,
# prev_uid, field_count, k1, v1, ...  A mark is "seq:uid" of the game's last appended row ("seq"
# alone when written before rows had identities: then numbers are compared).  "next" (the
# unlocked fast path) appends an entry only when its predecessor is the mark's row.  "after" (the
# locked relay; a game's entries consecutive, in seq order, all its rows) appends what follows
# the mark's row among them, or all of them when the first follows it; when neither (the mark is
# of another generation of the database) it appends all of them and reports the game.  Returns
# the appended count, the number of games left out of turn, Redis's time (ms), one '1' or '0' per
# entry (appended or not), those games, then the reported ones.
_APPEND = """
local function mark_of(value)
  if not value then return 0, nil end
  local seq, uid = string.match(value, '^(%d+):(.+)$')
  if seq then return tonumber(seq), uid end
  return tonumber(value), nil
end
local entries = {}
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i + 4])
  entries[#entries + 1] = {game = ARGV[i], seq = tonumber(ARGV[i + 1]), uid = ARGV[i + 2], prev = ARGV[i + 3],
                           first = i + 5, last = i + 4 + 2 * n, index = #entries + 1}
  i = i + 5 + 2 * n
end
local appended = 0
local done = {}
for k = 1, #entries do done[k] = '0' end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function append(e)
  redis.call('XADD', KEYS[1], '*', unpack(ARGV, e.first, e.last))
  local mark = e.uid ~= '' and (e.seq .. ':' .. e.uid) or tostring(e.seq)
  redis.call('HSET', KEYS[2], e.game, mark)
  -- Start the game's durability checkpoint unless it has one: the sweep then finds it due on its
  -- first look at these rows.  One it has is moved on by the sweep only (when due): moved here on
  -- every append, a game with steady traffic would never have a due one.
  redis.call('HSETNX', KEYS[3], e.game, now .. '@' .. mark)
  appended = appended + 1
  done[e.index] = '1'
end
local out_of_turn, reported = {}, {}
local maxlen = tonumber(ARGV[2])
if ARGV[1] == 'next' then
  for _, e in ipairs(entries) do
    local high, head = mark_of(redis.call('HGET', KEYS[2], e.game))
    local next_one
    if head then next_one = e.uid ~= '' and e.prev == head else next_one = e.seq == high + 1 end
    if next_one then append(e) elseif e.seq > high then out_of_turn[#out_of_turn + 1] = e.game end
  end
else
  local k = 1
  while k <= #entries do
    local game, last = entries[k].game, k
    while last < #entries and entries[last + 1].game == game do last = last + 1 end
    local high, head = mark_of(redis.call('HGET', KEYS[2], game))
    local from = last + 1
    if head then
      for j = k, last do if entries[j].uid == head then from = j + 1 end end
      if from > last and entries[last].uid ~= head then
        from = k
        if entries[k].prev ~= head then reported[#reported + 1] = game end
      end
    else
      for j = last, k, -1 do if entries[j].seq > high then from = j end end
    end
    for j = from, last do append(entries[j]) end
    k = last + 1
  end
end
local function id_before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am or not bm then return false end
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
if maxlen > 0 and appended > 0 and redis.call('XLEN', KEYS[1]) - maxlen > math.floor(maxlen / 10) then
  -- Trim, never past the consumer's offset nor past its repair floor (the oldest entry its repair
  -- may still re-read: handed on, not yet applied), at a cost that does not grow with its lag: no
  -- entry is read.  Entries after the guard = entries ever added - entries added up to the guard
  -- (the consumer saves that count with its offset, the repair with its floor).  When they fit in
  -- maxlen, MAXLEN keeps the newest maxlen, so all of them; otherwise MINID drops only what is
  -- before the guard (it keeps the guard's entry itself).  While the count is unknown (an offset
  -- set by hand, a replay before the consumer's next save, a floor too far back to count) nothing
  -- is trimmed.
  local guard = KEYS[4] and redis.call('GET', KEYS[4])
  if guard then  -- without an offset the consumer has not started: it has consumed nothing yet
    local through = nil
    if KEYS[5] and KEYS[5] ~= '' then
      local progress = redis.call('HMGET', KEYS[5], 'offset', 'entries_through_offset')
      if progress[1] == guard and progress[2] then through = tonumber(progress[2]) end
    end
    if KEYS[6] and KEYS[6] ~= '' then
      local floor = redis.call('HMGET', KEYS[6], 'id', 'entries_through')
      if floor[1] and id_before(floor[1], guard) then
        guard = floor[1]
        through = floor[2] and tonumber(floor[2]) or nil
      end
    end
    local lag = nil
    if through then
      local info = redis.call('XINFO', 'STREAM', KEYS[1])
      for j = 1, #info, 2 do
        if info[j] == 'entries-added' then lag = info[j + 1] - through end
      end
    end
    if lag ~= nil and lag <= maxlen then
      redis.call('XTRIM', KEYS[1], 'MAXLEN', maxlen)
    elseif lag ~= nil then
      redis.call('XTRIM', KEYS[1], 'MINID', guard)
    end
  end
end
local reply = {appended, #out_of_turn, now, table.concat(done)}
for _, game in ipairs(out_of_turn) do reply[#reply + 1] = game end
for _, game in ipairs(reported) do reply[#reply + 1] = game end
return reply
"""


# KEYS: stream.  ARGV: retention (ms).  Trims, on Redis's clock, what is older than the retention
# but never an entry a consumer group has not read (after its last-delivered id) or not
# acknowledged (its pending list).  Returns the trimmed count, the age of the oldest entry left
# (-1: none), then per group with something unread: its name and the age of its oldest unread.
_RETAIN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, -1} end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function before(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local floor = tostring(now - tonumber(ARGV[1])) .. '-0'
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local newest = '0-0'
for j = 1, #info, 2 do if info[j] == 'last-generated-id' then newest = info[j + 1] end end
local reply = {0, -1}
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, last
  for j = 1, #group, 2 do
    if group[j] == 'name' then name = group[j + 1] elseif group[j] == 'last-delivered-id' then last = group[j + 1] end
  end
  local oldest = nil
  if before(last, newest) then oldest = last end
  local pending = redis.call('XPENDING', KEYS[1], name)
  if pending[1] > 0 and (oldest == nil or before(pending[2], oldest)) then oldest = pending[2] end
  if oldest then
    if before(oldest, floor) then floor = oldest end
    reply[#reply + 1] = name
    reply[#reply + 1] = now - parse(oldest)
  end
end
reply[1] = redis.call('XTRIM', KEYS[1], 'MINID', floor)
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if first then reply[2] = now - parse(first[1]) end
return reply
"""


# KEYS: mark hash, checkpoint hash.  ARGV: game, checkpoint, game, checkpoint, ...  Forgets a game's
# mark and checkpoint only if the checkpoint is still the one read (no relay visited it since).
_FORGET_MARKS = """
local forgotten = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    forgotten = forgotten + 1
  end
end
return forgotten
"""

# KEYS: stream, the once-key.  ARGV: how long the key is remembered (s), then k1, v1, ...
_APPEND_ONCE = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
return 1
"""
APPEND_ONCE_MEMORY_SECONDS = 86_400
"""How long :meth:`PostgresStreamOutbox.append_once` remembers a key (redeliveries come within minutes)."""


@dataclass(frozen=True)
class OutboxSpec:
    """Where one outbox lives and where it goes."""

    table: str
    """Qualified outbox table with ``id``, ``game_id``, ``seq``, ``fields`` (jsonb)."""
    lock_table: str
    """Qualified table with one row per game, locked by every transaction that numbers rows."""
    stream: str
    mark_key: str
    """Redis hash: per game, the last row appended (``seq:uid``)."""
    maxlen: int = 0
    """Trim the stream to about this many entries after appending (0: never)."""
    guard_key: str = ""
    """Redis key holding the consumer's stored offset: trimming never passes it."""
    guard_progress_key: str = ""
    """Redis hash where the consumer keeps ``offset`` and ``entries_through_offset`` (the stream's
    entries-added count up to it): trimming learns the consumer's lag from it without reading entries."""
    retention_ms: int = 0
    """Entries older than this are trimmed (by the periodic relay), never one a consumer group has not
    read (0: kept whole)."""
    guard_floor_key: str = ""
    """Redis hash ``id``, ``entries_through`` where the consumer's repair keeps the oldest entry it may
    still re-read (handed on, not applied yet): trimming never passes it either."""
    source_column: str = ""
    """Column holding the stream entry that caused each row (``OutboxEntry.source_entry_id``), if kept."""


@dataclass(frozen=True)
class _Appended:
    entries: list[OutboxEntry]
    out_of_turn: list[str]
    other_generation: list[str]
    at_ms: int


class PostgresStreamOutbox:
    """``StreamOutbox`` for one :class:`OutboxSpec`."""

    DEFAULT_DURABLE_AFTER_MS = 3000

    @property
    def label(self) -> str:
        return self.spec.table

    def __init__(
        self,
        engine: Engine,
        client: redis.Redis,
        redis_url: str,
        spec: OutboxSpec,
        *,
        durable_after_ms: int = DEFAULT_DURABLE_AFTER_MS,
        on_new_generation: Callable[[str, Sequence[str]], None] | None = None,
        on_appended: Callable[[Sequence[OutboxEntry], int], None] | None = None,
    ) -> None:
        """``durable_after_ms``: how long after an append Redis is trusted to have it on disk (rows wait that long).

        ``on_new_generation(stream, games)`` hears of games whose rows are of
        another generation of the database than their marks (a restore, a
        failover, a downgrade): all their rows were appended, some perhaps again.
        ``on_appended(entries, at_ms)`` hears of every entry appended, by either path, with Redis's time
        of the append.
        """
        self._on_appended = on_appended
        self._durable_after_ms = durable_after_ms
        self._checkpoint_key = f"{spec.mark_key}:durable_checkpoint"
        self._on_new_generation = on_new_generation
        self._engine = engine
        self._db_url = engine.url.render_as_string(hide_password=False)
        self._r = client
        self._redis_url = redis_url
        self.spec = spec
        self._append = client.register_script(_APPEND)
        self._retain = client.register_script(_RETAIN)
        self._append_once = client.register_script(_APPEND_ONCE)
        self._forget_marks = client.register_script(_FORGET_MARKS)
        self._scan_cursor_key = f"{spec.mark_key}:idle_scan_cursor"
        self._games_with_rows = text(
            f"SELECT DISTINCT game_id FROM {spec.table} WHERE game_id = ANY(CAST(:game_ids AS text[]))"
        )
        lock = (
            f"SELECT game_id FROM {spec.lock_table} "
            "WHERE game_id = ANY(CAST(:game_ids AS text[])) ORDER BY game_id FOR UPDATE"
        )
        self._lock_wait = text(lock)
        self._lock_skip = text(f"{lock} SKIP LOCKED")
        self._row_keys = text(
            f"SELECT id, game_id, seq, uid, prev_uid FROM {spec.table} "
            "WHERE game_id = ANY(CAST(:game_ids AS text[])) ORDER BY game_id, seq"
        )
        source = spec.source_column or "''"
        self._row_fields = text(
            f"SELECT id, fields, {source} AS source FROM {spec.table} WHERE id = ANY(CAST(:ids AS bigint[]))"
        )
        self._page_rows = text(
            f"SELECT id, game_id, seq, uid, prev_uid FROM {spec.table} WHERE id > :after "
            "AND created_at < now() - make_interval(secs => CAST(:settle_ms AS double precision) / 1000) "
            "ORDER BY id LIMIT :limit"
        )
        self._delete_rows = text(f"DELETE FROM {spec.table} WHERE id = ANY(CAST(:ids AS bigint[]))")
        self._seq_ranges = text(f"SELECT game_id, min(seq) AS low, max(seq) AS high FROM {spec.table} GROUP BY game_id")

    def _run_append(self, mode: str, entries: Sequence[OutboxEntry]) -> _Appended:
        """Run the script: what it appended, the games left out of turn, the games of another generation."""
        argv: list[Any] = [mode, self.spec.maxlen]
        for entry in entries:
            argv.extend((entry.game_id, entry.seq, entry.uid, entry.prev_uid, len(entry.fields)))
            for key, value in entry.fields.items():
                argv.extend((key, value))
        guards = [self.spec.guard_key, self.spec.guard_progress_key, self.spec.guard_floor_key]
        keys = [self.spec.stream, self.spec.mark_key, self._checkpoint_key, *(guards if self.spec.guard_key else [])]
        with redis_errors(self._redis_url):
            reply = list(self._append(keys=keys, args=argv))
        games = [_text(game) for game in reply[4:]]
        out_of_turn = int(reply[1])
        flags = _text(reply[3])
        done = _Appended(
            [entry for entry, flag in zip(entries, flags, strict=True) if flag == "1"],
            games[:out_of_turn],
            games[out_of_turn:],
            int(reply[2]),
        )
        if done.entries and self._on_appended is not None:
            self._on_appended(done.entries, done.at_ms)
        return done

    def publish_committed(self, entries: Sequence[OutboxEntry]) -> tuple[int, list[str]]:
        if not entries:
            return 0, []
        done = self._run_append("next", entries)
        return len(done.entries), sorted(set(done.out_of_turn))

    def relay_games(self, game_ids: Sequence[str], *, wait_for_locks: bool) -> int:
        if not game_ids:
            return 0
        with pg_errors(self._db_url), self._engine.connect() as conn, conn.begin():
            lock = self._lock_wait if wait_for_locks else self._lock_skip
            locked = [row.game_id for row in conn.execute(lock, {"game_ids": sorted(set(game_ids))})]
            if not locked:
                return 0
            rows = _by_game(conn.execute(self._row_keys, {"game_ids": locked}).all())
            if not rows:
                return 0
            view = self._redis_view(list(rows))
            behind = [game for game, keys in rows.items() if not _all_appended(keys, view.marks[game])]
            appended = 0
            if behind:
                appended = self._append_after(conn, [key for game in behind for key in rows[game]])
                view = self._redis_view(list(rows))  # the marks moved: checkpoints record the new ones
            ids = self._durable_row_ids(rows, view)
            if ids:
                conn.execute(self._delete_rows, {"ids": ids})
        return appended

    def scan_page(self, after: int, limit: int) -> OutboxPage:
        """The next ``limit`` rows by id, without locks: which games a locked visit would change.

        Only rows older than ``durable_after_ms``: a younger one is its task's
        to append right after commit, and could not be deleted yet anyway.  The
        append script starts a game's durability checkpoint, so by then it is
        usually due and one locked visit deletes the rows; a game whose rows
        are all appended (the mark's row among them, none past it) and whose
        checkpoint is not due is left alone, and one with none (rows appended
        before checkpoints started there) gets one here.  A row still not
        appended at that age (its worker died between commit and append,
        Redis was away) is appended by that visit.
        """
        with pg_errors(self._db_url), self._engine.connect() as conn:
            page = conn.execute(
                self._page_rows, {"after": after, "limit": limit, "settle_ms": self._durable_after_ms}
            ).all()
        if not page:
            return OutboxPage([], 0, 0)
        rows = _by_game(page)
        view = self._redis_view(list(rows))
        games: list[str] = []
        started: dict[str, str] = {}
        unappended = 0
        for game, keys in rows.items():
            mark = view.marks[game]
            if not _all_appended(keys, mark):
                games.append(game)
                seq = parse_mark(mark)[0] if mark else 0
                unappended += sum(1 for key in keys if key.seq > seq)
            elif view.checks[game] is None:
                started[game] = f"{view.now}@{_text(mark or '')}"
            elif self._due(view.checks[game], view.now):
                games.append(game)
        if started:
            self._start_checkpoints(started)
        return OutboxPage(games, unappended, int(page[-1].id) if len(page) == limit else 0)

    def _start_checkpoints(self, checkpoints: Mapping[str, str]) -> None:
        """Record, for games with none yet, the mark read at a moment: no lock needed, as it only says
        what Redis held then (``HSETNX``: a checkpoint a relay set meanwhile is newer and stays)."""
        with redis_errors(self._redis_url):
            pipe = self._r.pipeline(transaction=False)
            for game, checkpoint in checkpoints.items():
                pipe.hsetnx(self._checkpoint_key, game, checkpoint)
            pipe.execute()

    def _append_after(self, conn: Connection, keys: Sequence[_RowKey]) -> int:
        """Append, under the games' locks, what follows each game's mark among its rows (``keys``)."""
        fields = {
            int(row.id): (row.fields if isinstance(row.fields, dict) else json.loads(row.fields), str(row.source))
            for row in conn.execute(self._row_fields, {"ids": [key.id for key in keys]})
        }
        entries = [
            OutboxEntry(k.game_id, k.seq, fields[k.id][0], k.uid, k.prev_uid, source_entry_id=fields[k.id][1])
            for k in keys
        ]
        done = self._run_append("after", entries)
        if done.other_generation and self._on_new_generation is not None:
            self._on_new_generation(self.spec.stream, done.other_generation)
        return len(done.entries)

    def _redis_view(self, game_ids: list[str]) -> _RedisView:
        """Redis's clock, the games' marks and durability checkpoints, read at one moment."""
        with redis_errors(self._redis_url):
            pipe = self._r.pipeline(transaction=True)
            pipe.time()
            pipe.hmget(self.spec.mark_key, game_ids)
            pipe.hmget(self._checkpoint_key, game_ids)
            (seconds, micros), marks, checks = pipe.execute()
        return _RedisView(
            int(seconds) * 1000 + int(micros) // 1000,
            dict(zip(game_ids, marks, strict=True)),
            dict(zip(game_ids, checks, strict=True)),
        )

    def _due(self, check: str | bytes | None, now: int) -> bool:
        return check is None or int(_text(check).partition("@")[0]) <= now - self._durable_after_ms

    def _durable_row_ids(self, rows: Mapping[str, Sequence[_RowKey]], view: _RedisView) -> list[int]:
        """The rows Redis has certainly made durable; the due checkpoints move on to the current marks.

        A row is deleted only once its entry is durable, or a Redis crash (with
        ``appendfsync everysec``, up to a second of writes) could take the entry
        while its row is gone.  Redis 7.0 has no ``WAITAOF``, so age stands in:
        a checkpoint ``time@mark`` per game (Redis's own clock) records the mark
        at a moment; once ``durable_after_ms`` has passed, everything up to that
        mark is on disk, and the checkpoint moves on to the current mark.
        """
        durable: list[int] = []
        moved: dict[Any, Any] = {}
        for game_id, keys in rows.items():
            check = view.checks[game_id]
            if not self._due(check, view.now):
                continue
            checked = _text(check).partition("@")[2] if check is not None else ""
            if checked:
                durable.extend(_rows_through(keys, checked))
            mark = view.marks[game_id]
            moved[game_id] = f"{view.now}@{_text(mark) if mark else ''}"
        if moved:
            with redis_errors(self._redis_url):
                self._r.hset(self._checkpoint_key, mapping=moved)
        return durable

    def forget_idle_games(self, idle_ms: int, batch: int) -> int:
        """One step of a scan over the checkpoints (the scan's cursor kept in Redis between calls).

        A checkpoint moves every time the relay visits its game, and the relay
        visits every game with rows: one older than ``idle_ms`` belongs to a
        game nothing was published for since.  Its lock row is held while the
        outbox is checked for rows and the marks go (no commit can slip in),
        and the marks go only if the checkpoint is unchanged.
        """
        with redis_errors(self._redis_url):
            seconds, _ = self._r.time()
            cursor = int(self._r.get(self._scan_cursor_key) or 0)
            scanned: Any = self._r.hscan(self._checkpoint_key, cursor, count=batch)
            cursor, found = scanned
            self._r.set(self._scan_cursor_key, cursor)
        cutoff = int(seconds) * 1000 - idle_ms
        idle = {_text(g): _text(c) for g, c in found.items() if int(_text(c).partition("@")[0]) < cutoff}
        if not idle:
            return 0
        with pg_errors(self._db_url), self._engine.connect() as conn, conn.begin():
            locked = [row.game_id for row in conn.execute(self._lock_skip, {"game_ids": sorted(idle)})]
            busy = {row.game_id for row in conn.execute(self._games_with_rows, {"game_ids": locked})}
            argv: list[str] = []
            for game_id in locked:
                if game_id not in busy:
                    argv.extend((game_id, idle[game_id]))
            if not argv:
                return 0
            with redis_errors(self._redis_url):
                forgotten = int(self._forget_marks(keys=[self.spec.mark_key, self._checkpoint_key], args=argv))
        return forgotten

    def append_once(self, key: str, fields: Mapping[str, str]) -> bool:
        argv: list[Any] = [APPEND_ONCE_MEMORY_SECONDS]
        for name, value in fields.items():
            argv.extend((name, value))
        once_key = f"{self.spec.mark_key}:once:{key}"
        with redis_errors(self._redis_url):
            return bool(self._append_once(keys=[self.spec.stream, once_key], args=argv))

    def enforce_retention(self) -> RetentionReport | None:
        if self.spec.retention_ms <= 0:
            return None
        with redis_errors(self._redis_url):
            reply = list(self._retain(keys=[self.spec.stream], args=[self.spec.retention_ms]))
        unread = {_text(reply[i]): int(reply[i + 1]) / 1000 for i in range(2, len(reply), 2)}
        oldest = None if int(reply[1]) < 0 else int(reply[1]) / 1000
        return RetentionReport(self.spec.retention_ms / 1000, int(reply[0]), oldest, unread)

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
            max(0, int(row.high) - max(parse_mark(mark)[0], int(row.low) - 1))
            for row, mark in zip(ranges, marks, strict=True)
        )


def parse_mark(value: str | bytes | None) -> tuple[int, str]:
    """A mark's number and row identity: ``"seq:uid"``; ``"seq"`` (identity "") from before identities."""
    if not value:
        return 0, ""
    seq, _, uid = _text(value).partition(":")
    return int(seq), uid


@dataclass(frozen=True)
class _RowKey:
    """An outbox row without its fields (the relay reads those only for rows it appends)."""

    id: int
    game_id: str
    seq: int
    uid: str
    prev_uid: str


@dataclass(frozen=True)
class _RedisView:
    now: int
    marks: Mapping[str, str | bytes | None]
    checks: Mapping[str, str | bytes | None]


def _by_game(rows: Sequence[Any]) -> dict[str, list[_RowKey]]:
    """Rows grouped by game, each game's in the order read (by seq, or by id, which follows seq)."""
    grouped: dict[str, list[_RowKey]] = {}
    for row in rows:
        key = _RowKey(int(row.id), row.game_id, int(row.seq), str(row.uid), str(row.prev_uid or ""))
        grouped.setdefault(key.game_id, []).append(key)
    return grouped


def _all_appended(keys: Sequence[_RowKey], mark: str | bytes | None) -> bool:
    """Whether the mark says every one of these rows is on the stream: its row among them, none past it.

    Conservative: anything else (no mark, a mark from before identities, a mark
    of another generation, the mark's row not among them) counts as not
    appended, and the locked relay's script decides.
    """
    if not mark:
        return False
    seq, uid = parse_mark(mark)
    if not uid or any(key.seq > seq for key in keys):
        return False
    return any(key.seq == seq and key.uid == uid for key in keys)


def _rows_through(keys: Sequence[_RowKey], checkpoint: str) -> list[int]:
    """The ids of a game's rows (in seq order) up to its durable checkpoint.

    Up to the checkpoint's row when it is among them (none when it is not: it
    was deleted already, or it is of another generation); by number for a
    checkpoint from before identities.
    """
    seq, uid = parse_mark(checkpoint)
    if not uid:
        return [key.id for key in keys if key.seq <= seq]
    uids = [key.uid for key in keys]
    return [key.id for key in keys[: uids.index(uid) + 1]] if uid in uids else []


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
