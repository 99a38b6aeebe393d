"""The whole Game Master pipeline equals a one-at-a-time run of seed ``001``.

Random interleaved event sequences over several games — valid events of all
seven types, malformed entries, unknown types, unknown games, and entries
handed on twice — go through the real bridge and two real pool workers (a
prefork worker with two processes, and a thread-pool worker whose concurrent
tasks share transactions through the group commit); the rows and the per-game
``gm:lobby_events`` snapshot sequences must be exactly those of the reference
model.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from galaxy_tasks.task_names import TaskName
from galaxy_tasks.testing.cluster import Cluster
from galaxy_tasks.testing.seed001 import ReferenceGameMaster, RefRecord
from tests.support.brokers import ON_BOTH_BROKERS
from tests.support.events import EVENT_TYPES
from tests.support.pipeline import Pipeline, now_ms

pytestmark = pytest.mark.integration

STATUSES = ["running", "engine_unreachable", "generation_in_progress", "stopped"]
GAMES = 4  # the last one is never registered: an unknown game


@dataclass(frozen=True)
class Event:
    game: int
    kind: str  # an event type, "unknown_type", "bad_time", "no_game", "no_type"


event_strategy = st.builds(
    Event,
    game=st.integers(0, GAMES - 1),
    kind=st.sampled_from([*EVENT_TYPES, *EVENT_TYPES, "unknown_type", "bad_time", "no_game", "no_type"]),
)
scenario = st.tuples(
    st.lists(st.sampled_from(STATUSES), min_size=GAMES - 1, max_size=GAMES - 1),
    st.lists(event_strategy, min_size=1, max_size=40),
    st.lists(st.integers(0, 39), max_size=6),
)

_example = itertools.count()


def entry_fields(game_id: str, event: Event) -> dict[str, str]:
    fields = {
        "game_id": game_id,
        "container_id": f"c-{game_id}",
        "event_type": event.kind,
        "occurred_at_ms": str(now_ms()),
        "details": "{}",
    }
    if event.kind == "bad_time":
        fields.update(event_type="container_exited", occurred_at_ms="12.5")
    elif event.kind == "no_game":
        del fields["game_id"]
    elif event.kind == "no_type":
        fields["event_type"] = ""
    return fields


@pytest.fixture
def running_pipeline(pipeline: Pipeline, cluster: Cluster) -> Pipeline:
    cluster.pool_worker("pool-a", concurrency=2)
    # A thread pool too: its concurrent per-event tasks share transactions (group commit).
    cluster.pool_worker("pool-b", concurrency=8, pool="threads")
    cluster.long_running_worker()
    cluster.beat()
    return pipeline


@ON_BOTH_BROKERS
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=scenario)
def test_pipeline_matches_one_at_a_time_reference(
    running_pipeline: Pipeline, case: tuple[list[str], list[Event], list[int]]
) -> None:
    pipe = running_pipeline
    statuses, events, redeliveries = case
    prefix = f"ex{next(_example)}"
    game_ids = [f"{prefix}-g{i}" for i in range(GAMES)]
    registered = dict(zip(game_ids, statuses, strict=False))
    pipe.add_games(registered, current_turn=7)

    reference = ReferenceGameMaster(records={g: RefRecord(s, current_turn=7) for g, s in registered.items()})
    all_fields = [entry_fields(game_ids[e.game], e) for e in events]
    for fields in all_fields:
        reference.handle(fields)

    entry_ids = pipe.xadd_health(all_fields)
    handoffs = _handoffs(entry_ids, all_fields)
    # the same entry handed on a second time, as a redelivery would
    pipe.send_tasks(TaskName.GM_APPLY_HEALTH_EVENT.value, [handoffs[i] for i in redeliveries if i < len(handoffs)])

    last_by_game = {
        f["game_id"]: entry_id for entry_id, f in zip(entry_ids, all_fields, strict=True) if f.get("game_id")
    }
    pipe.wait_settled(entry_ids, last_by_game)

    rows = pipe.rows(game_ids)
    expected_rows = {g: (r.status, r.engine_health, r.current_turn) for g, r in reference.records.items()}
    assert rows == expected_rows
    expected_snapshots = {g: s for g, s in reference.snapshots.items() if s}
    assert pipe.lobby_snapshots(game_ids) == expected_snapshots


def _handoffs(entry_ids: list[str], all_fields: list[dict[str, str]]) -> list[list[object]]:
    """The task arguments the bridge derives: each entry with its game's previous entry id."""
    previous: dict[str, str] = {}
    out: list[list[object]] = []
    for entry_id, fields in zip(entry_ids, all_fields, strict=True):
        game_id = fields.get("game_id") or None
        prev = previous.get(game_id) if game_id else None
        if game_id:
            previous[game_id] = entry_id
        out.append([entry_id, fields, prev])
    return out
