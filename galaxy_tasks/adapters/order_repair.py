"""Finding stalled games (PostgreSQL + the bridge's map in Redis) and re-reading their entries.

"Older than the cutoff" is judged on each backend's own clock: the age the
caller means (its now minus its cutoff) is taken from PostgreSQL's ``now()``
for parking and cursor times, and from Redis's ``TIME`` for stream ids (which
Redis stamps).  A worker whose clock is off by seconds then repairs neither
early nor late.

A run costs what was handed on since the last run, not every game ever seen:
it reads the entries the bridge handed on after the point the last run looked
at (``repair_scan``'s ``through``), and checks only their games and the games
the last run found behind (``suspects``) against their cursors.  A game
caught up when looked at needs no second look until the bridge hands on
another of its entries, which the next run reads.  The repair's trim floor
keeps those entries in the stream until a run has read them; when they are
gone all the same (the repair stopped for longer than its floor lives), when
the bridge's offset went back or a replay was counted in the scan, or on the first
run, the run looks at every game in the bridge's map instead, once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, cast

import redis
from sqlalchemy import Engine, text

from galaxy_tasks import metrics
from galaxy_tasks.adapters.postgres.engine import translated_errors as pg_errors
from galaxy_tasks.adapters.redis.client import translated_errors as redis_errors
from galaxy_tasks.contract import BridgeKeys
from galaxy_tasks.domain.gamemaster.entries import FIELD_GAME_ID, game_id_of
from galaxy_tasks.domain.handoffs import Handoff, StreamEntry
from galaxy_tasks.domain.health_events import HEALTH_EVENT_FIELDS
from galaxy_tasks.domain.stream_fields import decode_entry_fields
from galaxy_tasks.domain.stream_ids import StreamId, is_after
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.gamemaster import StalledGame

log = get_logger(__name__)

_PAGE = 1000
_SCAN_PAGE = 5000
"""Entries read per ``XRANGE`` while a run looks at what was handed on since the last one."""
_GAME_ID_ONLY = frozenset({FIELD_GAME_ID})
# KEYS: stream.  ARGV: start (exclusive: "(id"), end id, count.  Returns the page's last id, its
# entry count, then each entry's game_id ('' when it has none; of a field given twice, the last,
# as redis-py's reply to XRANGE keeps it, which is what the bridge partitioned by).
_GAME_IDS = """
local page = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', tonumber(ARGV[3]))
local reply = {'', #page}
for i, entry in ipairs(page) do
  local game = ''
  local fields = entry[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'game_id' then game = fields[j + 1] end
  end
  reply[i + 2] = game
  reply[1] = entry[1]
end
return reply
"""
_LOOKUP_BATCH = 10_000
"""Games whose cursors (one query) and handed-on entries (one ``HMGET``) are read at a time."""

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
_CURSORS_OF = _CURSORS + " WHERE game_id = ANY(%(game_ids)s)"
_ALL_PARKED = text(
    "SELECT game_id, array_agg(entry_id) AS entry_ids, array_agg(prev_entry_id) AS prev_ids "
    "FROM gamemaster.health_event_parked GROUP BY game_id"
)
_PARKED_OF = text("SELECT entry_id, prev_entry_id, fields FROM gamemaster.health_event_parked WHERE game_id = :game_id")


def _applied(cursor: tuple[str | None, int] | None) -> str | None:
    return None if cursor is None else cursor[0]


def _caught_up(applied: str | None, last: str) -> bool:
    return applied is not None and (applied == last or StreamId.parse(applied) >= StreamId.parse(last))


@dataclass
class _Survey:
    """What one run knows of the games that may be behind: only those it looked at."""

    cursors: dict[str, tuple[str | None, int]]
    """Per game looked at: its cursor's last applied entry and how long ago (ms) the cursor moved."""
    handed_on: dict[str, str]
    """Per game looked at: the last entry the bridge handed on (games the bridge forgot are left out)."""
    through: str | None
    """The bridge's offset when the run looked: every entry handed on up to it has been looked at."""
    through_count: int | None
    """The stream's entries-added count up to and including ``through``, when the bridge saved it."""
    full: bool
    replays: str
    """The bridge's replay count when the run looked, saved as the count it has seen: a replay that came
    during the run is still unseen, so the next run looks at everything."""

    @cached_property
    def behind(self) -> list[str]:
        """The games looked at whose last handed-on entry is not applied, in id order."""
        return sorted(g for g, last in self.handed_on.items() if not _caught_up(_applied(self.cursors.get(g)), last))


class PostgresRedisOrderRepairStore:
    def __init__(
        self,
        engine: Engine,
        client: redis.Redis,
        raw_client: redis.Redis,
        *,
        stream: str,
        keys: BridgeKeys,
        redis_url: str,
        floor_ttl_ms: int,
        floor_count_limit: int,
    ) -> None:
        """``raw_client`` returns bytes: the stream is read with it, decoded per field (SPEC §5 "Bad input").

        ``keys`` are the stream's bridge keys: its offset, its handed-on map, and the repair's own
        floor and scan.  The floor (a hash ``id``, ``entries_through``) is where
        :meth:`protect_unapplied` keeps the oldest entry a repair may still need, for
        ``floor_ttl_ms``; counting the entries after it reads at most ``floor_count_limit`` + 1 of
        them (the stream's trim length: past that the trim cannot reach the floor by length anyway,
        only by its id).
        """
        self._keys = keys
        self._floor_ttl_ms = floor_ttl_ms
        self._floor_count_limit = floor_count_limit
        self._engine = engine
        self._db_url = engine.url.render_as_string(hide_password=False)
        self._r = client
        self._raw = raw_client
        self._stream = stream
        self._redis_url = redis_url
        self._kept: _Survey | None = None
        self._game_ids_script = raw_client.register_script(_GAME_IDS)

    def stalled_games(self, cutoff_ms: int, limit: int) -> list[StalledGame]:
        age_ms = max(int(time.time() * 1000) - cutoff_ms, 0)  # what the caller means, free of its clock
        stalled: dict[str, StalledGame] = {}
        with pg_errors(self._db_url), self._engine.connect() as conn:
            for row in conn.execute(_OLD_PARKED, {"age_ms": age_ms, "limit": limit}):
                target = max(row.parked_ids, key=StreamId.parse)
                stalled[row.game_id] = StalledGame(row.game_id, row.last_entry_id, target, "parked")
        survey = self._survey(keep=False)
        cursors, handed_on = survey.cursors, survey.handed_on
        with redis_errors(self._redis_url):
            first: Any = self._raw.xrange(self._stream, count=1)
            seconds, micros = self._r.time()
        cutoff_ms = int(seconds) * 1000 + int(micros) // 1000 - age_ms  # on Redis's clock, like the ids
        oldest = StreamId.parse(first[0][0].decode()) if first else None
        for game_id, game in list(stalled.items()):
            waited_for = self._waited_for(game)
            if waited_for is not None and (oldest is None or waited_for < oldest):
                stalled[game_id] = replace(game, gap=True)  # the entry its parked ones wait for is gone
        behind = survey.behind
        for game_id in behind:
            last = handed_on[game_id]
            if len(stalled) >= limit:
                break
            if game_id in stalled or StreamId.parse(last).ms >= cutoff_ms:
                continue
            cursor = cursors.get(game_id)
            applied = _applied(cursor)
            gone = oldest is None or StreamId.parse(last) < oldest  # trimmed away before it was applied
            if gone:
                stalled[game_id] = StalledGame(game_id, applied, last, "behind", gap=True)
                continue
            if cursor is not None and cursor[1] <= age_ms:
                continue  # not quiet for long enough
            stalled[game_id] = StalledGame(game_id, applied, last, "behind")
        self._save_scan(survey, behind)
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
        cursor the oldest it is known to wait for.  And the entries handed on
        after this run looked, which the next run reads.  Stored with the
        stream's entries-added count up to it (entries added minus those after
        it), so the trim compares lengths without reading entries.
        """
        with pg_errors(self._db_url), self._engine.connect() as conn:
            parked = {row.game_id: [*row.entry_ids, *row.prev_ids] for row in conn.execute(_ALL_PARKED)}
        survey = self._survey(keep=True)
        cursors, handed_on = survey.cursors, survey.handed_on
        candidates: list[StreamId] = []
        for game_id in {*survey.behind, *parked}:
            cursor = _applied(cursors.get(game_id))
            last = handed_on.get(game_id)
            if last is not None and _caught_up(cursor, last) and not parked.get(game_id):
                continue
            if cursor is not None:
                candidates.append(StreamId.parse(cursor))
                continue
            known = [StreamId.parse(i) for i in [*parked.get(game_id, []), last] if i]
            if known:
                candidates.append(min(known))
        with redis_errors(self._redis_url):
            scanned = None if survey.through is None else StreamId.parse(survey.through)
            if scanned is not None and (not candidates or scanned <= min(candidates)):
                floor, through = str(scanned), survey.through_count  # the bridge counted up to it
            elif candidates:
                floor, through = str(min(candidates)), None
            else:
                self._r.delete(self._keys.repair_floor)
                return None
            if through is None:
                pipe = self._raw.pipeline(transaction=True)
                pipe.xrange(self._stream, min=f"({floor}", max="+", count=self._floor_count_limit + 1)
                pipe.xinfo_stream(self._stream)
                try:
                    after, info = pipe.execute()
                except redis.exceptions.ResponseError:
                    return None  # no stream yet: nothing to trim
                through = int(info["entries-added"]) - len(after) if len(after) <= self._floor_count_limit else 0
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(self._keys.repair_floor, mapping={"id": floor, "entries_through": through})
            pipe.pexpire(self._keys.repair_floor, self._floor_ttl_ms)
            pipe.execute()
        return floor

    def _survey(self, *, keep: bool) -> _Survey:
        """The games this run looks at, with their cursors and last handed-on entries.

        A run reads it once: :meth:`protect_unapplied` keeps its survey
        (``keep``) for the :meth:`stalled_games` that follows it, which uses it up.
        """
        if self._kept is not None:
            kept, self._kept = self._kept, None
            if not keep:
                return kept
        k = self._keys
        with redis_errors(self._redis_url):
            pipe = self._r.pipeline(transaction=True)
            pipe.get(k.offset)
            pipe.hmget(k.progress, ["offset", "entries_through_offset"])
            pipe.hmget(k.repair_scan, ["through", "suspects", "replays", "replays_seen"])
            offset, (progress_offset, progress_count), scan = pipe.execute()
            looked_through, suspects_text, replays, replays_seen = scan
            first: Any = self._raw.xrange(self._stream, count=1)
        oldest = first[0][0].decode() if first else None
        count = int(progress_count) if progress_count is not None and progress_offset == offset else None
        suspects = _suspects(suspects_text)
        replays = replays or "0"
        full = (
            looked_through is None
            or suspects is None
            or replays != (replays_seen or "0")  # entries were handed on again: they lie behind ``through``
            or (offset is not None and is_after(looked_through, offset))  # the offset went back
            or (
                offset is not None
                and is_after(offset, looked_through)
                and (oldest is None or is_after(oldest, looked_through))  # unread entries were trimmed
            )
        )
        if full:
            cursors, handed_on = self._everything()
        else:
            games = set(suspects or ()) | self._games_handed_on(looked_through, offset)
            cursors, handed_on = self._looked_up(games)
        survey = _Survey(cursors, handed_on, offset, count if offset is not None else None, full, replays)
        metrics.ORDER_REPAIR_GAMES_CHECKED.labels("full" if full else "incremental").inc(len(handed_on))
        if keep:
            self._kept = survey
        return survey

    def _games_handed_on(self, after: str, through: str | None) -> set[str]:
        """The games of the entries after ``after`` up to ``through`` (the bridge's offset).

        Read page by page by a script that returns only each entry's ``game_id``
        bytes: the other fields never cross the wire.
        """
        games: set[str] = set()
        if through is None or not is_after(through, after):
            return games
        start = f"({after}"
        with redis_errors(self._redis_url):
            while True:
                reply: Any = self._game_ids_script(keys=[self._stream], args=[start, through, _SCAN_PAGE])
                last, count, values = reply[0], int(reply[1]), reply[2:]
                for value in values:
                    game_id = game_id_of(decode_entry_fields({FIELD_GAME_ID: value}, _GAME_ID_ONLY))
                    if game_id is not None:
                        games.add(game_id)
                if count < _SCAN_PAGE:
                    break
                start = f"({last.decode()}"
        return games

    def _looked_up(self, games: Collection[str]) -> tuple[dict[str, tuple[str | None, int]], dict[str, str]]:
        """The cursors and last handed-on entries of ``games``."""
        ordered = sorted(games)
        cursors: dict[str, tuple[str | None, int]] = {}
        handed_on: dict[str, str] = {}
        for start in range(0, len(ordered), _LOOKUP_BATCH):
            batch = ordered[start : start + _LOOKUP_BATCH]
            with redis_errors(self._redis_url):
                lasts: list[Any] = self._r.hmget(self._keys.last_by_partition, batch)
            handed_on.update({g: str(last) for g, last in zip(batch, lasts, strict=True) if last is not None})
            with pg_errors(self._db_url), self._engine.connect() as conn:
                cursor = conn.connection.cursor()
                cursor.execute(_CURSORS_OF, {"game_ids": batch})
                cursors.update({game_id: (last, int(idle)) for game_id, last, idle in cursor.fetchall()})
                cursor.close()
        return cursors, handed_on

    def _everything(self) -> tuple[dict[str, tuple[str | None, int]], dict[str, str]]:
        """Every cursor and the bridge's whole handed-on map (a run's first look, or after a gap in its reading).

        Both grow with the games ever seen, so the rows come as plain tuples.
        """
        with redis_errors(self._redis_url):
            handed_on: dict[str, str] = cast(dict[str, str], self._r.hgetall(self._keys.last_by_partition))
        if not handed_on:
            return {}, {}  # nothing handed on that a cursor could be short of
        with pg_errors(self._db_url), self._engine.connect() as conn:
            cursor = conn.connection.cursor()
            cursor.execute(_CURSORS)
            cursors = {game_id: (last, int(idle_ms)) for game_id, last, idle_ms in cursor.fetchall()}
            cursor.close()
        log.info("order_repair_full_survey", stream=self._stream, games=len(handed_on), cursors=len(cursors))
        return cursors, handed_on

    def _save_scan(self, survey: _Survey, behind: Sequence[str]) -> None:
        """What the next run starts from: how far this one looked, and the games it found behind."""
        if survey.through is None:
            return  # the bridge has handed nothing on yet
        with redis_errors(self._redis_url):
            self._r.hset(  # a replay that came since the run read the scan is still unseen: it counts
                self._keys.repair_scan,
                mapping={
                    "through": survey.through,
                    "suspects": json.dumps(list(behind)),
                    "replays_seen": survey.replays,
                },
            )

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


def _suspects(text: str | None) -> list[str] | None:
    """The saved list of games found behind; ``None`` when absent or unreadable (then every game is looked at)."""
    if text is None:
        return None
    try:
        games = json.loads(text)
    except ValueError:
        return None
    if not isinstance(games, list) or not all(isinstance(g, str) for g in games):
        return None
    return games
