"""Seed 001's Game Master health events consumer as a plain loop: the oracle the pipeline is checked against.

Written straight from the seed's Go worker (``HandleMessage``: XREAD COUNT 1 →
``decodeEvent`` → ``planFor`` → CAS ``UpdateStatus`` from the expected status,
falling back to ``UpdateEngineHealth`` → debounce on the last *published*
summary → snapshot from the row after the write), one entry at a time, with
the seed's debounce map kept in memory for the whole run.

The rule that makes it an oracle: it shares **no logic** with
``galaxy_tasks.domain`` (nor anything else of the package) — it imports
nothing from ``galaxy_tasks`` and works on plain types; callers convert.
A mistake copied into both would pass every comparison unnoticed, so keep it
that way.  The unit and property tests, the integration tests and ``bench/``
all use this one model (``bench/`` may not import ``tests/``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SEED_SUMMARY = {
    "container_started": "healthy",
    "probe_recovered": "healthy",
    "probe_failed": "probe_failed",
    "inspect_unhealthy": "inspect_unhealthy",
    "container_exited": "exited",
    "container_oom": "oom",
    "container_disappeared": "disappeared",
}
"""``planFor``: the summary each known event type writes (the seven types the seed knows)."""
SEED_TRANSITION = {
    "probe_recovered": ("engine_unreachable", "running"),
    "container_exited": ("running", "engine_unreachable"),
    "container_oom": ("running", "engine_unreachable"),
    "container_disappeared": ("running", "engine_unreachable"),
}
"""``planFor``: the CAS ``(from, to)`` of the event types that carry one."""


def go_positive_int64(raw: str) -> bool:
    """``strconv.ParseInt(raw, 10, 64)`` succeeds and the value is positive (ASCII digits, one optional sign)."""
    body = raw[1:] if raw[:1] in "+-" else raw
    if not body or not body.isascii() or not body.isdigit():
        return False
    return 0 < int(raw) < 2**63


def decode(fields: Mapping[str, str]) -> tuple[str, str] | None:
    """``decodeEvent``: ``(game_id, event_type)``, or ``None`` for an entry the seed skips as malformed."""
    game_id = fields.get("game_id", "")
    event_type = fields.get("event_type", "")
    raw_ms = fields.get("occurred_at_ms", "")
    if not game_id.strip() or not event_type.strip() or not raw_ms.strip() or not go_positive_int64(raw_ms):
        return None
    return game_id, event_type


@dataclass
class RefRecord:
    """A ``runtime_records`` row as the seed reads it."""

    status: str
    engine_health: str = ""
    current_turn: int = 0


@dataclass
class ReferenceGameMaster:
    """Records by game id, the snapshots published per game, and the seed's debounce map.

    ``snapshots`` holds ``(runtime_status, engine_health_summary, current_turn)``
    per published snapshot, as the Lobby reads them.  When :meth:`handle` is
    given the entry id, the model also keeps what this project's per-game
    cursor would hold (``last_entry``: the last entry observed per non-blank
    game id, applied or skipped) and which entry caused each snapshot
    (``snapshot_entries``, parallel to ``snapshots``).
    """

    records: dict[str, RefRecord] = field(default_factory=dict)
    snapshots: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    last_emitted: dict[str, str] = field(default_factory=dict)
    skipped: int = 0
    last_entry: dict[str, str] = field(default_factory=dict)
    snapshot_entries: dict[str, list[str]] = field(default_factory=dict)

    def handle(self, fields: Mapping[str, str], entry_id: str | None = None) -> None:
        """``HandleMessage`` of one entry (the offset always moves past it)."""
        raw_game = fields.get("game_id", "")
        if entry_id is not None and raw_game.strip():
            self.last_entry[raw_game] = entry_id
        decoded = decode(fields)
        if decoded is None or decoded[1] not in SEED_SUMMARY or decoded[0] not in self.records:
            self.skipped += 1
            return
        game_id, event_type = decoded
        record = self.records[game_id]
        summary = SEED_SUMMARY[event_type]
        changed = False
        transition = SEED_TRANSITION.get(event_type)
        if transition is not None and record.status == transition[0]:
            record.status = transition[1]
            changed = True
        record.engine_health = summary
        if not changed and self.last_emitted.get(game_id) == summary:
            return
        self.snapshots.setdefault(game_id, []).append((record.status, record.engine_health, str(record.current_turn)))
        if entry_id is not None:
            self.snapshot_entries.setdefault(game_id, []).append(entry_id)
        self.last_emitted[game_id] = summary
