"""A thread-pool worker commits concurrent per-event tasks together, with the one-at-a-time result.

The tasks are sent straight to the queue (no bridge), as the bridge would hand
them on: each game's entries chained by ``prev_entry_id``.  The worker is
``-P threads -c 8``, so while one transaction is in flight the next tasks
queue up behind it and share the next one.
"""

from __future__ import annotations

import random

import pytest

from galaxy_tasks.task_names import TaskName
from galaxy_tasks.testing.cluster import Cluster, wait_until
from galaxy_tasks.testing.seed001 import ReferenceGameMaster, RefRecord
from tests.support.events import last_entry_by_game, random_entries
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

GAMES = 40
ENTRIES = 400
BATCH_METRIC = "galaxy_gm_health_event_batch_entries"


def test_concurrent_tasks_of_a_thread_pool_share_transactions_and_end_as_one_at_a_time(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    game_ids = [f"gc-{n}" for n in range(GAMES)]
    pipeline.add_games(dict.fromkeys(game_ids, "running"), current_turn=2)
    entries = random_entries(random.Random(7), game_ids, ENTRIES)
    reference = ReferenceGameMaster(records={g: RefRecord("running", current_turn=2) for g in game_ids})
    for fields in entries:
        reference.handle(fields)
    entry_ids = pipeline.xadd_health(entries)
    cluster.pool_worker("threads", concurrency=8, pool="threads")

    previous: dict[str, str] = {}
    handoffs: list[list[object]] = []
    for entry_id, fields in zip(entry_ids, entries, strict=True):
        game_id = fields.get("game_id") or ""
        prev = previous.get(game_id) if game_id.strip() else None
        if game_id.strip():
            previous[game_id] = entry_id
        handoffs.append([entry_id, fields, prev])
    pipeline.send_tasks(TaskName.GM_APPLY_HEALTH_EVENT.value, handoffs)

    last = last_entry_by_game(entry_ids, entries)
    wait_until(
        lambda: all(pipeline.cursors().get(g) == e for g, e in last.items()), timeout=120, what="every entry applied"
    )
    wait_until(lambda: pipeline.metric(f"{BATCH_METRIC}_sum") >= ENTRIES, timeout=30, what="the batch metric to add up")

    assert pipeline.rows(game_ids) == {
        g: (r.status, r.engine_health, r.current_turn) for g, r in reference.records.items()
    }
    assert pipeline.lobby_snapshots(game_ids) == {g: s for g, s in reference.snapshots.items() if s}
    batches = pipeline.metric(f"{BATCH_METRIC}_count")
    assert pipeline.metric(f"{BATCH_METRIC}_sum") == ENTRIES
    assert batches < ENTRIES, f"{ENTRIES} tasks took {batches:.0f} transactions: nothing was committed together"
