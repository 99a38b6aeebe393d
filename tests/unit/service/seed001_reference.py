"""Seed 001's ``HandleMessage`` applied one entry at a time: the reference the consumer is checked against.

Written straight from seed 001 (decode, planFor, CAS with fall-back, debounce
on the last *published* summary, snapshot from the row after the write) with
the debounce map kept in memory as the seed does.  It shares no code with
``galaxy_tasks.domain``; only the record and cursor types are borrowed, so its
result compares directly with a :class:`~galaxy_tasks.testing.gamemaster.FakeDatabase`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord
from galaxy_tasks.ports import Handoff
from galaxy_tasks.testing.gamemaster import FakeDatabase

SEED_PLANS: dict[str, tuple[str, tuple[str, str] | None]] = {
    "container_started": ("healthy", None),
    "probe_recovered": ("healthy", ("engine_unreachable", "running")),
    "probe_failed": ("probe_failed", None),
    "inspect_unhealthy": ("inspect_unhealthy", None),
    "container_exited": ("exited", ("running", "engine_unreachable")),
    "container_oom": ("oom", ("running", "engine_unreachable")),
    "container_disappeared": ("disappeared", ("running", "engine_unreachable")),
}
_GO_INT = re.compile(r"[+-]?[0-9]+")


def _go_parse_int64(raw: str) -> int | None:
    """``strconv.ParseInt(raw, 10, 64)``; ``None`` where Go returns an error."""
    if not _GO_INT.fullmatch(raw):
        return None
    value = int(raw)
    return value if -(2**63) <= value < 2**63 else None


def _seed_decode(fields: dict[str, str]) -> tuple[str, str] | None:
    """``decodeEvent``: the game id and event type, or ``None`` for a malformed entry."""
    game_id = fields.get("game_id", "")
    event_type = fields.get("event_type", "")
    raw_ms = fields.get("occurred_at_ms", "")
    if not game_id.strip() or not event_type.strip() or not raw_ms.strip():
        return None
    occurred_at_ms = _go_parse_int64(raw_ms)
    if occurred_at_ms is None or occurred_at_ms <= 0:
        return None
    return game_id, event_type


@dataclass
class Expected:
    records: dict[str, GameRecord]
    cursors: dict[str, ConsumerCursor] = field(default_factory=dict)
    snapshots: dict[str, list[tuple[str, dict[str, str]]]] = field(default_factory=dict)


def reference_model(records: dict[str, GameRecord], entries: list[tuple[str, dict[str, str]]]) -> Expected:
    """Apply ``entries`` one at a time, in stream order, as the seed's worker does."""
    expected = Expected(records=dict(records))
    last_emitted: dict[str, str] = {}
    last_entry: dict[str, str] = {}
    for entry_id, fields in entries:
        raw_game = fields.get("game_id", "")
        if raw_game.strip():
            last_entry[raw_game] = entry_id  # the entry is observed: the game's cursor moves past it
        decoded = _seed_decode(fields)
        if decoded is None:
            continue
        game_id, event_type = decoded
        plan = SEED_PLANS.get(event_type)
        current = expected.records.get(game_id)
        if plan is None or current is None:
            continue
        summary, transition = plan
        status_changed = transition is not None and current.status == transition[0]
        if transition is not None and status_changed:
            written = replace(current, status=transition[1], engine_health=summary)
        else:
            written = replace(current, engine_health=summary)
        expected.records[game_id] = written
        if status_changed or last_emitted.get(game_id) != summary:
            expected.snapshots.setdefault(game_id, []).append(
                (
                    entry_id,
                    {
                        "event_type": "runtime_snapshot_update",
                        "game_id": written.game_id,
                        "current_turn": str(written.current_turn),
                        "runtime_status": written.status,
                        "engine_health_summary": written.engine_health,
                        "player_turn_stats": "[]",
                    },
                )
            )
            last_emitted[game_id] = summary
    expected.cursors = {
        g: ConsumerCursor(g, e, last_emitted.get(g), len(expected.snapshots.get(g, []))) for g, e in last_entry.items()
    }
    return expected


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
