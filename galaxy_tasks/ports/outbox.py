"""Outboxes to Redis streams, as their publishers see them: right after commit, and the relay."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutboxEntry:
    """A committed outbox row: the ``seq``-th entry of its game for the outbox's stream.

    ``uid`` is the row's own identity and ``prev_uid`` that of the game's row
    before it ("": the first of its chain, or a row that predates identities).
    Numbers repeat when the database goes back in time (a restore, a failover
    to a lagging standby); identities never do, so "next" is judged by them.
    """

    game_id: str
    seq: int
    fields: Mapping[str, str]
    uid: str = ""
    prev_uid: str = ""
    source_entry_id: str = ""
    """The stream entry whose handling committed this row ("": none, or not kept): the start of its
    freshness, measured when the row is appended."""


class StreamOutbox(Protocol):
    """An outbox to a Redis stream, seen by its publishers: right after commit, and the periodic relay."""

    @property
    def label(self) -> str:
        """How logs and metrics name it (the contract's ``OutboxNames.label``)."""
        ...

    def publish_committed(self, entries: Sequence[OutboxEntry]) -> tuple[int, list[str]]:
        """Append the committed ``entries`` that are next in their game's sequence, without locks.

        Returns how many were appended and the games whose entries had to be
        left to :meth:`relay_games` (an earlier entry of theirs is not out yet).
        """
        ...

    def relay_games(self, game_ids: Sequence[str], *, wait_for_locks: bool) -> int:
        """Under the games' locks, append their rows not yet appended, in order, then delete the rows."""
        ...

    def scan_page(self, after: int, limit: int) -> OutboxPage:
        """Read the ``limit`` rows after id ``after`` (no locks): the games :meth:`relay_games` would change."""
        ...

    def backlog(self) -> int:
        """Rows not appended yet, counted over the whole outbox (for ``galaxy-tasks status``)."""
        ...

    def forget_idle_games(self, idle_ms: int, batch: int) -> int:
        """Forget the marks of up to ``batch`` games with no rows left and none relayed for ``idle_ms``.

        Their next row is then appended under its game's lock like a first one. Returns how many.
        """
        ...

    def append_once(self, key: str, fields: Mapping[str, str]) -> bool:
        """Append an entry that belongs to no game's sequence, once per ``key`` (remembered for a day)."""
        ...

    def enforce_retention(self) -> RetentionReport | None:
        """Drop the stream's entries older than its retention, never one a consumer group has not
        read; ``None`` for a stream kept whole."""
        ...


@dataclass(frozen=True)
class OutboxPage:
    """One page of an outbox, read by the periodic sweep."""

    games: list[str]
    """Games a locked visit would change: rows to append, or rows old enough to delete."""
    unappended: int
    """Rows of the page not on the stream yet."""
    next_after: int
    """The id the next page starts after; 0 once the page reached the end of the outbox."""


@dataclass(frozen=True)
class RetentionReport:
    """What one retention pass over a stream did and saw."""

    retention_seconds: float
    trimmed: int
    oldest_entry_age_seconds: float | None
    """How far back the stream goes now (``None``: empty)."""
    unread_ages_seconds: Mapping[str, float]
    """Per consumer group with entries it has not read (or not acknowledged): how old the oldest is."""
