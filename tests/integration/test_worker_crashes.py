"""``kill -9`` in the middle of the stream: every entry still applied exactly once in effect.

Two crashes, each against real worker processes: the worker running the
stream bridge (the supervisor must start a new bridge on the other
long-running worker), and a pool worker holding a per-event task mid-
transaction (the broker must redeliver it; the cursor makes the second
application a no-op if the first had committed).
"""

from __future__ import annotations

import os
import random
import signal

import pytest
from sqlalchemy import text

from galaxy_tasks.contract import HEALTH_EVENTS_BRIDGE_KEYS
from galaxy_tasks.testing.cluster import CeleryProcess, Cluster, wait_until
from galaxy_tasks.testing.seed001 import ReferenceGameMaster, RefRecord
from tests.support.brokers import ON_BOTH_BROKERS
from tests.support.events import Feeder, last_entry_by_game, random_entries
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

LEASE_KEY = HEALTH_EVENTS_BRIDGE_KEYS.lease


def _expect(pipe: Pipeline, games: dict[str, str], entries: list[dict[str, str]]) -> ReferenceGameMaster:
    reference = ReferenceGameMaster(records={g: RefRecord(s) for g, s in games.items()})
    for fields in entries:
        reference.handle(fields)
    return reference


def _assert_matches(pipe: Pipeline, reference: ReferenceGameMaster, games: dict[str, str]) -> None:
    expected_rows = {g: (r.status, r.engine_health, r.current_turn) for g, r in reference.records.items()}
    assert pipe.rows(games) == expected_rows
    assert pipe.lobby_snapshots(games) == {g: s for g, s in reference.snapshots.items() if s}


def _bridge_holder(pipe: Pipeline, candidates: list[CeleryProcess]) -> CeleryProcess | None:
    holder = pipe.r.get(LEASE_KEY)
    if holder is None:
        return None
    pid = int(str(holder).split(":")[1])
    return next((p for p in candidates if p.pid == pid), None)


@ON_BOTH_BROKERS
def test_bridge_worker_killed_mid_stream_is_replaced_and_every_entry_applied_once(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    rng = random.Random(20261122)
    games = {f"g{i}": rng.choice(["running", "engine_unreachable"]) for i in range(40)}
    pipeline.add_games(games)
    entries = random_entries(rng, list(games), 1500)
    cluster.pool_worker("pool", concurrency=2)
    long_running = [cluster.long_running_worker("lr-a"), cluster.long_running_worker("lr-b")]
    cluster.beat()

    feeder = Feeder(pipeline, entries, batch=10, pause=0.01)
    feeder.start()
    wait_until(lambda: len(feeder.entry_ids) > 300 and pipeline.offset() is not None, timeout=30, what="the bridge")
    victim = _bridge_holder(pipeline, long_running)
    assert victim is not None, "the bridge's lease holder is one of the long-running workers"
    cluster.kill9(victim)
    survivor = next(p for p in long_running if p is not victim)

    wait_until(
        lambda: _bridge_holder(pipeline, long_running) is survivor,
        timeout=30,
        what="the supervisor to start the bridge on the surviving long-running worker",
    )
    entry_ids = feeder.finish()
    pipeline.wait_settled(entry_ids, last_entry_by_game(entry_ids, entries), timeout=120)

    assert pipeline.offset() == entry_ids[-1]
    _assert_matches(pipeline, _expect(pipeline, games, entries), games)


def _lock_waiters(pipe: Pipeline) -> int:
    with pipe.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = 'galaxy_tasks' "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


@pytest.mark.parametrize("what_dies", ["whole_worker", "pool_child"])
@ON_BOTH_BROKERS
def test_pool_worker_killed_mid_task_entry_is_applied_once_after_redelivery(
    pipeline: Pipeline, cluster: Cluster, what_dies: str
) -> None:
    games = {"g-held": "running", "g-free": "running"}
    pipeline.add_games(games)
    cluster.long_running_worker()
    cluster.beat()
    pool = cluster.pool_worker("pool-1", concurrency=1, queues="gamemaster.health_events")
    cluster.pool_worker("periodic", concurrency=1, queues="galaxy.periodic")

    # Another flow holds the game's row: the task blocks inside its transaction, mid-task.
    blocker = pipeline.engine.connect()
    tx = blocker.begin()
    blocker.execute(text("SELECT 1 FROM gamemaster.runtime_records WHERE game_id = 'g-held' FOR UPDATE"))
    entries = [
        {
            "game_id": "g-held",
            "container_id": "c1",
            "event_type": "container_exited",
            "occurred_at_ms": "1700000000000",
            "details": '{"exit_code": 3}',
        },
        {
            "game_id": "g-held",
            "container_id": "c1",
            "event_type": "probe_failed",
            "occurred_at_ms": "1700000000001",
            "details": "{}",
        },
        {
            "game_id": "g-free",
            "container_id": "c2",
            "event_type": "container_oom",
            "occurred_at_ms": "1700000000002",
            "details": "{}",
        },
    ]
    try:
        entry_ids = pipeline.xadd_health(entries[:1])
        wait_until(lambda: _lock_waiters(pipeline) == 1, timeout=30, what="the task to block on the row lock")
        if what_dies == "whole_worker":
            cluster.kill9(pool)
            cluster.pool_worker("pool-2", concurrency=1, queues="gamemaster.health_events")
        else:
            (child,) = pool.pool_pids()
            os.kill(child, signal.SIGKILL)
        entry_ids += pipeline.xadd_health(entries[1:])
    finally:
        tx.rollback()
        blocker.close()

    pipeline.wait_settled(entry_ids, last_entry_by_game(entry_ids, entries), timeout=60)
    assert pipeline.rows(games) == {
        "g-held": ("engine_unreachable", "probe_failed", 0),
        "g-free": ("engine_unreachable", "oom", 0),
    }
    assert pipeline.lobby_snapshots(games) == {
        "g-held": [("engine_unreachable", "exited", "0"), ("engine_unreachable", "probe_failed", "0")],
        "g-free": [("engine_unreachable", "oom", "0")],
    }
