"""The order repair's view of the Game Master in memory: parked and stalled games, and the stream to re-read.

:class:`FakeOrderRepairStore` stands in for the PostgreSQL + Redis adapter of
``OrderRepairStore``: it reads only what is committed in a
:class:`~galaxy_tasks.testing.gamemaster.FakeDatabase`, the bridge's last
entry handed on per game, and a
:class:`~galaxy_tasks.testing.bridge.FakeStreamReader` whose trimmed entries
are gone, and finds stalled games with the adapter's two queries (old parked
rows first, then games behind what the bridge handed on).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from galaxy_tasks.domain.handoffs import Handoff, StreamEntry
from galaxy_tasks.domain.stream_ids import StreamId, is_after
from galaxy_tasks.ports.gamemaster import StalledGame
from galaxy_tasks.testing.bridge import FakeStreamReader
from galaxy_tasks.testing.gamemaster import FakeDatabase


class FakeOrderRepairStore:
    """``OrderRepairStore`` over a :class:`FakeDatabase`, a :class:`FakeStreamReader` and the bridge's map.

    ``handed_on`` is the bridge's last entry handed on per game (its
    ``last_by_partition``).  :meth:`stalled_games` finds what the PostgreSQL +
    Redis adapter finds: first games whose oldest parked row is older than the
    cutoff (target: their newest parked entry), then games whose last
    handed-on entry is older than the cutoff while their cursor is short of it
    and has not been saved since the cutoff.  Everything it reads is committed.
    """

    def __init__(self, db: FakeDatabase, stream: FakeStreamReader, handed_on: Mapping[str, str] | None = None) -> None:
        self.db = db
        self.stream = stream
        self.handed_on: dict[str, str] = dict(handed_on or {})
        self.stalled_calls: list[tuple[int, int]] = []
        self.entries_calls: list[tuple[str, str | None, str]] = []
        self.parked_calls: list[str] = []
        self.floor: str | None = None

    def _cursor_entry(self, game_id: str) -> str | None:
        cursor = self.db.cursors.get(game_id)
        return None if cursor is None else cursor.last_entry_id

    def stalled_games(self, cutoff_ms: int, limit: int) -> list[StalledGame]:
        self.stalled_calls.append((cutoff_ms, limit))
        stalled: dict[str, StalledGame] = {}
        for game_id in sorted({game for game, _ in self.db.parked}):
            if len(stalled) >= limit:
                break
            rows = self.db.parked_of(game_id)
            if min(row.parked_at_ms for row in rows) < cutoff_ms:
                cursor_entry = self._cursor_entry(game_id)
                waited = min(rows, key=lambda r: StreamId.parse(r.entry_id)).handoff().prev_entry_id
                gap = (
                    waited is not None
                    and (cursor_entry is None or is_after(waited, cursor_entry))
                    and self._gone(waited)
                )
                stalled[game_id] = StalledGame(game_id, cursor_entry, rows[-1].entry_id, "parked", gap=gap)
        for game_id, last in sorted(self.handed_on.items()):
            if len(stalled) >= limit:
                break
            if game_id in stalled or StreamId.parse(last).ms >= cutoff_ms:
                continue
            cursor = self.db.cursors.get(game_id)
            applied = None if cursor is None else cursor.last_entry_id
            if self._gone(last) and (applied is None or is_after(last, applied)):
                stalled[game_id] = StalledGame(game_id, applied, last, "behind", gap=True)
                continue
            if cursor is not None:
                quiet = self.db.cursor_updated_at_ms.get(game_id, 0) < cutoff_ms
                caught_up = cursor.last_entry_id is not None and not is_after(last, cursor.last_entry_id)
                if not quiet or caught_up:
                    continue
            stalled[game_id] = StalledGame(game_id, self._cursor_entry(game_id), last, "behind")
        return list(stalled.values())

    def _gone(self, entry_id: str) -> bool:
        """Older than the stream's first entry: trimmed away."""
        first = self.stream.entries[0].entry_id if self.stream.entries else None
        return first is None or is_after(first, entry_id)

    def protect_unapplied(self) -> str | None:
        """The oldest entry a repair may re-read, as the adapter finds it (kept in ``floor``)."""
        candidates: list[str] = []
        parked_games = {game for game, _ in self.db.parked}
        for game_id in set(self.handed_on) | parked_games:
            cursor_entry, last = self._cursor_entry(game_id), self.handed_on.get(game_id)
            caught_up = cursor_entry is not None and last is not None and not is_after(last, cursor_entry)
            if caught_up and game_id not in parked_games:
                continue
            if cursor_entry is not None:
                candidates.append(cursor_entry)
                continue
            rows = self.db.parked_of(game_id) if game_id in parked_games else []
            known = [i for r in rows for i in (r.entry_id, r.handoff().prev_entry_id) if i] + ([last] if last else [])
            if known:
                candidates.append(min(known, key=StreamId.parse))
        self.floor = min(candidates, key=StreamId.parse) if candidates else None
        return self.floor

    def parked_of(self, game_id: str) -> list[Handoff]:
        self.parked_calls.append(game_id)
        return [self.db.parked[key].handoff() for key in sorted(self.db.parked) if key[0] == game_id]

    def entries_of_game(self, game_id: str, after: str | None, through: str) -> list[StreamEntry]:
        self.entries_calls.append((game_id, after, through))
        return [
            StreamEntry(e.entry_id, dict(e.fields))
            for e in self.stream.entries
            if e.fields.get("game_id") == game_id
            and (after is None or is_after(e.entry_id, after))
            and not is_after(e.entry_id, through)
        ]


if TYPE_CHECKING:  # the fake must keep matching the protocol it stands in for
    from galaxy_tasks.ports.gamemaster import OrderRepairStore

    def _conforms(db: FakeDatabase) -> None:
        _repair: OrderRepairStore = FakeOrderRepairStore(db, FakeStreamReader())
