"""A one-at-a-time reference model of the Game Master health consumer, straight from seed ``001``.

Written independently of ``galaxy_tasks.domain`` on purpose: the tests
compare the distributed pipeline against this plain loop (XREAD COUNT 1 →
decode → plan → CAS or summary-only update → debounce → snapshot), with the
seed's debounce map kept for the whole run.
"""

from __future__ import annotations

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
SEED_TRANSITION = {
    "probe_recovered": ("engine_unreachable", "running"),
    "container_exited": ("running", "engine_unreachable"),
    "container_oom": ("running", "engine_unreachable"),
    "container_disappeared": ("running", "engine_unreachable"),
}


@dataclass
class RefRecord:
    status: str
    engine_health: str = ""
    current_turn: int = 0


@dataclass
class ReferenceGameMaster:
    """Records by game id, the snapshots published per game, and the seed's debounce map."""

    records: dict[str, RefRecord] = field(default_factory=dict)
    snapshots: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    last_emitted: dict[str, str] = field(default_factory=dict)
    skipped: int = 0

    def handle(self, fields: dict[str, str]) -> None:
        game_id = fields.get("game_id", "")
        event_type = fields.get("event_type", "")
        raw_ms = fields.get("occurred_at_ms", "")
        if not game_id.strip() or not event_type.strip() or not raw_ms.strip() or not _positive_int64(raw_ms):
            self.skipped += 1
            return
        if event_type not in SEED_SUMMARY:
            self.skipped += 1
            return
        record = self.records.get(game_id)
        if record is None:
            self.skipped += 1
            return
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
        self.last_emitted[game_id] = summary


def _positive_int64(raw: str) -> bool:
    body = raw[1:] if raw[:1] in "+-" else raw
    if not body or not body.isascii() or not body.isdigit():
        return False
    value = int(raw)
    return 0 < value < 2**63
