"""The benchmark's input: seeded ``runtime:health_events`` entries over a set of running games.

The mix leans on what a real Runtime Manager emits most (probe failures and
recoveries, inspect findings) with a steady share of container losses, so the
Game Master makes CAS transitions both ways, hits CAS conflicts (a loss while
already ``engine_unreachable``) and debounces repeated summaries.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from galaxy_tasks.testing.seed001 import ReferenceGameMaster, RefRecord

EVENT_MIX: dict[str, int] = {
    "probe_failed": 24,
    "probe_recovered": 22,
    "inspect_unhealthy": 18,
    "container_started": 12,
    "container_exited": 10,
    "container_disappeared": 8,
    "container_oom": 6,
}
"""Relative weights of the seven event types (SPEC §3)."""

INITIAL_STATUS = "running"
INITIAL_TURN = 3


@dataclass(frozen=True)
class Workload:
    """Games to register and the entries to append, in stream order."""

    game_ids: list[str]
    entries: list[dict[str, str]]

    def last_index_by_game(self) -> dict[str, int]:
        """Per game, the index of its last entry."""
        return {fields["game_id"]: index for index, fields in enumerate(self.entries)}

    def expected(self) -> tuple[dict[str, tuple[str, str, int]], int]:
        """Final rows and number of Lobby snapshots of a one-at-a-time run (the tests' reference model)."""
        reference = ReferenceGameMaster(
            records={g: RefRecord(INITIAL_STATUS, current_turn=INITIAL_TURN) for g in self.game_ids}
        )
        for fields in self.entries:
            reference.handle(fields)
        rows = {g: (r.status, r.engine_health, r.current_turn) for g, r in reference.records.items()}
        return rows, sum(len(s) for s in reference.snapshots.values())


def game_ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(count)]


def details_for(event_type: str, rng: random.Random) -> str:
    """A ``details`` JSON of the shape SPEC §3 gives for ``event_type``."""
    details: dict[str, object]
    if event_type == "container_started":
        details = {"image_ref": "registry.local/galaxy-engine:1.4.2"}
    elif event_type in ("container_exited", "container_oom"):
        details = {"exit_code": 137 if event_type == "container_oom" else rng.choice([0, 1, 2, 139])}
    elif event_type == "container_disappeared":
        details = {"reason": "destroyed"} if rng.random() < 0.5 else {}
    elif event_type == "inspect_unhealthy":
        details = {"restart_count": rng.randint(1, 5), "state": "running", "health": "unhealthy"}
    elif event_type == "probe_failed":
        details = {"consecutive_failures": 3, "last_error": "GET /healthz: context deadline exceeded"}
    else:
        details = {"prior_failures": rng.randint(3, 9)}
    return json.dumps(details)


def entry(game_id: str, event_type: str, rng: random.Random, occurred_at_ms: int | None = None) -> dict[str, str]:
    return {
        "game_id": game_id,
        "container_id": f"{rng.getrandbits(64):016x}{rng.getrandbits(64):016x}",
        "event_type": event_type,
        "occurred_at_ms": str(occurred_at_ms or int(time.time() * 1000)),
        "details": details_for(event_type, rng),
    }


def make_workload(*, seed: int, games: Sequence[str], events: int) -> Workload:
    """``events`` entries, each for a game drawn uniformly from ``games``, types drawn from the mix."""
    rng = random.Random(seed)
    types = list(EVENT_MIX)
    weights = list(EVENT_MIX.values())
    now = int(time.time() * 1000)
    entries = [
        entry(rng.choice(games), rng.choices(types, weights)[0], rng, occurred_at_ms=now + i // 50)
        for i in range(events)
    ]
    return Workload(list(games), entries)


def one_event_per_game(*, seed: int, games: Sequence[str]) -> list[tuple[str, str]]:
    """``(game_id, event_type)`` for the latency run: one entry per game, types from the mix."""
    rng = random.Random(seed)
    types = list(EVENT_MIX)
    weights = list(EVENT_MIX.values())
    return [(g, rng.choices(types, weights)[0]) for g in games]
