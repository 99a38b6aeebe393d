"""The Game Master's Lobby outbox in memory: ``gamemaster.lobby_outbox`` relayed to ``gm:lobby_events``.

:class:`FakeLobbyOutbox` stands in for the ``PostgresStreamOutbox`` that
``bootstrap/root.py`` builds as ``lobby_outbox``: rows are committed by the health
consumer's unit of work (into a :class:`~galaxy_tasks.testing.gamemaster.FakeDatabase`),
and this object appends them to the stream.  It keeps the real relay's
per-game mark of the highest snapshot number appended, so a number is never
appended twice and never out of turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from galaxy_tasks.contract import LOBBY_OUTBOX
from galaxy_tasks.domain.errors import RedisUnavailable
from galaxy_tasks.ports.outbox import OutboxEntry, OutboxPage, RetentionReport
from galaxy_tasks.testing.gamemaster import FakeDatabase


class FakeLobbyOutbox:
    """``StreamOutbox`` over a :class:`FakeDatabase`'s Lobby outbox and an in-memory ``gm:lobby_events``.

    Like the real one it keeps, per game, the highest snapshot number already
    appended: the unlocked :meth:`publish_committed` appends only a game's next
    number, the locked :meth:`relay_games` anything past the mark, and neither
    appends a number twice.  ``locked_games`` stand for cursors other
    transactions hold (skipped by a relay that does not wait).
    """

    def __init__(
        self,
        db: FakeDatabase,
        *,
        locked_games: Iterable[str] = (),
        fail_times: int = 0,
        label: str = LOBBY_OUTBOX.label,
    ) -> None:
        self.label = label
        self.db = db
        self.locked_games = set(locked_games)
        self.fail_times = fail_times
        self.stream: list[dict[str, str]] = []
        self.published_seq: dict[str, int] = {}
        self.relay_calls: list[tuple[tuple[str, ...], bool]] = []
        self.publish_calls: list[tuple[str, ...]] = []
        self.scan_calls: list[tuple[int, int]] = []
        self.retention: RetentionReport | None = None
        """What :meth:`enforce_retention` reports (set by a test)."""
        self.retention_calls = 0
        self.once_keys: set[str] = set()
        self.forget_calls = 0

    def _fail_if_asked(self) -> None:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RedisUnavailable("fake outage")

    def publish_committed(self, entries: Sequence[OutboxEntry]) -> tuple[int, list[str]]:
        self.publish_calls.append(tuple(str(e.fields.get("game_id", e.game_id)) for e in entries))
        self._fail_if_asked()
        appended, out_of_turn = 0, set()
        for entry in entries:
            high = self.published_seq.get(entry.game_id, 0)
            if entry.seq == high + 1:
                self.stream.append(dict(entry.fields))
                self.published_seq[entry.game_id] = entry.seq
                appended += 1
            elif entry.seq > high:
                out_of_turn.add(entry.game_id)
        return appended, sorted(out_of_turn)

    def relay_games(self, game_ids: Sequence[str], *, wait_for_locks: bool) -> int:
        self.relay_calls.append((tuple(game_ids), wait_for_locks))
        self._fail_if_asked()
        games = set(game_ids)
        if not wait_for_locks:
            games -= self.locked_games
        rows = sorted((row for row in self.db.outbox if row.game_id in games), key=lambda r: (r.game_id, r.seq))
        appended = 0
        for row in rows:
            if row.seq > self.published_seq.get(row.game_id, 0):
                self.stream.append(row.snapshot.to_fields())
                self.published_seq[row.game_id] = row.seq
                appended += 1
        relayed = {row.id for row in rows}
        self.db.outbox = [row for row in self.db.outbox if row.id not in relayed]
        return appended

    def scan_page(self, after: int, limit: int) -> OutboxPage:
        """Every game with rows on the page is one to visit (this relay deletes rows as it appends them)."""
        self.scan_calls.append((after, limit))
        page = sorted((row for row in self.db.outbox if row.id > after), key=lambda r: r.id)[:limit]
        games: list[str] = []
        for row in page:
            if row.game_id not in games:
                games.append(row.game_id)
        unappended = sum(1 for row in page if row.seq > self.published_seq.get(row.game_id, 0))
        return OutboxPage(games, unappended, page[-1].id if len(page) == limit else 0)

    def backlog(self) -> int:
        return sum(1 for row in self.db.outbox if row.seq > self.published_seq.get(row.game_id, 0))

    def append_once(self, key: str, fields: Mapping[str, str]) -> bool:
        if key in self.once_keys:
            return False
        self.once_keys.add(key)
        self.stream.append(dict(fields))
        return True

    def forget_idle_games(self, idle_ms: int, batch: int) -> int:
        """Forgets the marks of games with no rows left (``idle_ms`` is not modelled)."""
        self.forget_calls += 1
        idle = [g for g in self.published_seq if all(row.game_id != g for row in self.db.outbox)][:batch]
        for game_id in idle:
            del self.published_seq[game_id]
        return len(idle)

    def enforce_retention(self) -> RetentionReport | None:
        self.retention_calls += 1
        return self.retention

    def stream_of(self, game_id: str) -> list[dict[str, str]]:
        return [fields for fields in self.stream if fields["game_id"] == game_id]


if TYPE_CHECKING:  # the fake must keep matching the protocol it stands in for
    from galaxy_tasks.ports.outbox import StreamOutbox

    def _conforms(db: FakeDatabase) -> None:
        _outbox: StreamOutbox = FakeLobbyOutbox(db)
