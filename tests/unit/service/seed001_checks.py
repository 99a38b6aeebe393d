"""Seed 001's reference model in the consumer's types, and the checks the unit tests make with it.

The model itself is :mod:`galaxy_tasks.testing.seed001` (an independent
oracle, shared with the integration tests and ``bench/``); :func:`reference_model`
only runs it and converts its plain result into records, cursors and outbox
fields, so it compares directly with a
:class:`~galaxy_tasks.testing.gamemaster.FakeDatabase`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.testing.gamemaster import FakeDatabase
from galaxy_tasks.testing.seed001 import SEED_SUMMARY, ReferenceGameMaster, RefRecord

SEED_EVENT_TYPES = tuple(SEED_SUMMARY)
"""The seven event types seed 001 knows."""


@dataclass
class Expected:
    records: dict[str, GameRecord]
    cursors: dict[str, ConsumerCursor] = field(default_factory=dict)
    snapshots: dict[str, list[tuple[str, dict[str, str]]]] = field(default_factory=dict)


def reference_model(records: dict[str, GameRecord], entries: list[tuple[str, dict[str, str]]]) -> Expected:
    """Apply ``entries`` one at a time, in stream order, as the seed's worker does."""
    reference = ReferenceGameMaster(
        records={g: RefRecord(r.status, r.engine_health, r.current_turn) for g, r in records.items()}
    )
    for entry_id, fields in entries:
        reference.handle(fields, entry_id)
    snapshots = {
        game_id: [
            (
                entry_id,
                {
                    "event_type": "runtime_snapshot_update",
                    "game_id": game_id,
                    "current_turn": turn,
                    "runtime_status": status,
                    "engine_health_summary": health,
                    "player_turn_stats": "[]",
                },
            )
            for entry_id, (status, health, turn) in zip(reference.snapshot_entries[game_id], published, strict=True)
        ]
        for game_id, published in reference.snapshots.items()
    }
    return Expected(
        records={g: GameRecord(g, r.status, r.engine_health, r.current_turn) for g, r in reference.records.items()},
        cursors={
            g: ConsumerCursor(g, e, reference.last_emitted.get(g), len(snapshots.get(g, [])))
            for g, e in reference.last_entry.items()
        },
        snapshots=snapshots,
    )


# --------------------------------------------------------------------------- the bridge, and what the consumer left


def stream_key(entry_id: str) -> tuple[int, int]:
    """A ``<ms>-<seq>`` id as numbers: stream order."""
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def has_game(fields: dict[str, str]) -> bool:
    return bool(fields.get("game_id", "").strip())


def bridge_handoffs(entries: list[tuple[str, dict[str, str]]]) -> list[Handoff]:
    """What the bridge hands on: each entry with the previous entry of the same game."""
    last: dict[str, str] = {}
    handoffs = []
    for entry_id, fields in entries:
        prev = None
        if has_game(fields):
            game = fields["game_id"]
            prev = last.get(game)
            last[game] = entry_id
        handoffs.append(Handoff(entry_id, fields, prev))
    return handoffs


def observed_snapshots(db: FakeDatabase) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """The outbox per game in commit order, without the processing time.

    Fails unless each game's rows are numbered 1, 2, ... in commit order (what
    lets a snapshot be appended right after commit without overtaking).
    """
    snapshots: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for row in sorted(db.outbox, key=lambda r: r.id):
        fields = row.snapshot.to_fields()
        del fields["occurred_at_ms"]
        mine = snapshots.setdefault(row.game_id, [])
        assert row.seq == len(mine) + 1, f"{row.game_id}: snapshot {len(mine) + 1} numbered {row.seq}"
        mine.append((row.stream_entry_id, fields))
    return snapshots


def applied_cursors(db: FakeDatabase) -> dict[str, ConsumerCursor]:
    """The cursors that have moved (locking a game creates an empty cursor for it)."""
    return {game: cursor for game, cursor in db.cursors.items() if cursor.last_entry_id is not None}
