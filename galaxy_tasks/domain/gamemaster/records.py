"""The Game Master's view of a runtime record, its consumer cursor and its Lobby snapshot."""

from __future__ import annotations

import json
from dataclasses import dataclass

SNAPSHOT_EVENT_TYPE = "runtime_snapshot_update"


@dataclass(frozen=True)
class GameRecord:
    """The fixed columns of ``gamemaster.runtime_records`` the health consumer reads and writes."""

    game_id: str
    status: str
    engine_health: str
    current_turn: int


@dataclass(frozen=True)
class ConsumerCursor:
    """Per-game consumer state, kept in the same transaction as the record change.

    ``last_entry_id`` is the newest health entry whose effect is committed (the
    exactly-once and ordering guard); ``last_published_summary`` is the shared,
    durable debounce memory that seed ``004`` D4 kept in process memory;
    ``lobby_seq`` counts the game's Lobby snapshots so far and numbers them, so
    whoever appends a committed snapshot can tell whether it is the next one of
    its game (per-game stream order without holding the lock while appending).
    """

    game_id: str
    last_entry_id: str | None = None
    last_published_summary: str | None = None
    lobby_seq: int = 0


@dataclass(frozen=True)
class LobbySnapshot:
    """One ``runtime_snapshot_update`` for ``gm:lobby_events`` (SPEC §3, fixed fields)."""

    game_id: str
    current_turn: int
    runtime_status: str
    engine_health_summary: str
    occurred_at_ms: int
    player_turn_stats: tuple[object, ...] = ()

    @classmethod
    def of(cls, record: GameRecord, occurred_at_ms: int) -> LobbySnapshot:
        """Build the snapshot from the row as it stands after the write (seed ``004`` D5)."""
        return cls(
            game_id=record.game_id,
            current_turn=record.current_turn,
            runtime_status=record.status,
            engine_health_summary=record.engine_health,
            occurred_at_ms=occurred_at_ms,
        )

    def to_fields(self) -> dict[str, str]:
        """The stream entry's fields, every value a string."""
        return {
            "event_type": SNAPSHOT_EVENT_TYPE,
            "game_id": self.game_id,
            "current_turn": str(self.current_turn),
            "runtime_status": self.runtime_status,
            "engine_health_summary": self.engine_health_summary,
            "player_turn_stats": json.dumps(list(self.player_turn_stats)),
            "occurred_at_ms": str(self.occurred_at_ms),
        }


@dataclass(frozen=True)
class QueuedSnapshot:
    """A snapshot committed to the Lobby outbox: the ``seq``-th of its game, caused by ``stream_entry_id``."""

    stream_entry_id: str
    seq: int
    snapshot: LobbySnapshot

    @property
    def game_id(self) -> str:
        return self.snapshot.game_id
