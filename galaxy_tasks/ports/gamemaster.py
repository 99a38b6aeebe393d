"""The Game Master's ports: the health consumer's unit of work and what the order repair reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord, QueuedSnapshot
from galaxy_tasks.domain.handoffs import Handoff, StreamEntry
from galaxy_tasks.ports.outbox import OutboxEntry


@dataclass(frozen=True)
class LockedGames:
    """What one transaction holds after locking its games: cursors, records, parked entries.

    ``records`` lacks the games without a runtime record; ``parked`` lacks the
    games with nothing parked.
    """

    cursors: dict[str, ConsumerCursor]
    records: dict[str, GameRecord]
    parked: dict[str, list[Handoff]]


@dataclass(frozen=True)
class ConsumerWrites:
    """Everything one health-consumer transaction writes, committed together."""

    now_ms: int
    records: Sequence[GameRecord] = ()
    cursors: Sequence[ConsumerCursor] = ()
    snapshots: Sequence[QueuedSnapshot] = ()
    park: Sequence[Handoff] = ()
    """Entries that wait for their predecessor (replacing a stored copy)."""
    unpark: Sequence[tuple[str, str]] = ()
    """``(game_id, entry_id)`` pairs to remove from the parking."""


class HealthConsumerUnitOfWork(Protocol):
    """One transaction of the Game Master health consumer: lock, then write and commit.

    Two calls rather than one per table, so an adapter can keep a transaction
    at a couple of round trips: the per-event task runs one per entry.
    Leaving the ``with`` block without :meth:`commit` rolls everything back.
    """

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def lock(self, game_ids: Sequence[str]) -> LockedGames:
        """Create missing cursors; lock every cursor, then every existing record, in game-id order.

        The parked entries are read after the cursor locks are granted, so an
        entry parked by the transaction that held a lock is seen.  A cursor is
        created only for an id that follows the game-id rule
        (:mod:`galaxy_tasks.domain.game_ids`) or whose game has a record or a
        cursor already: a game missing from the result has none of them, and
        nothing may be written for it (junk ids leave no state behind).
        """
        ...

    def commit(self, writes: ConsumerWrites) -> Sequence[OutboxEntry]:
        """Write records, cursors, outbox rows and parking changes, and commit them atomically.

        Returns the Lobby outbox rows committed (``writes.snapshots`` with their identities).
        """
        ...


@dataclass(frozen=True)
class StalledGame:
    game_id: str
    cursor: str | None
    target: str
    reason: str
    gap: bool = False
    """Entries it waits for are gone from the stream (trimmed before they were applied)."""


class OrderRepairStore(Protocol):
    def protect_unapplied(self) -> str | None:
        """Keep the stream's trim from the entries a repair may still re-read; the oldest of them."""
        ...

    def stalled_games(self, cutoff_ms: int, limit: int) -> list[StalledGame]: ...

    def parked_of(self, game_id: str) -> list[Handoff]: ...

    def entries_of_game(self, game_id: str, after: str | None, through: str) -> list[StreamEntry]: ...
