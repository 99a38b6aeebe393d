"""``galaxy-tasks replay --from ID`` on a running pipeline: nothing applied twice, what is missing re-applied."""

from __future__ import annotations

import subprocess
import time

import pytest
from sqlalchemy import text

from galaxy_tasks.testing.cluster import Cluster, wait_until
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.e2e


def replay(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return pipeline.cli("replay", *args)


def event(game: str, kind: str, at: int, details: str = "{}") -> dict[str, str]:
    return {"game_id": game, "container_id": "c", "event_type": kind, "occurred_at_ms": str(at), "details": details}


def test_a_replay_changes_nothing_already_applied_and_reapplies_what_a_restore_lost(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    cluster.pool_worker("pool", concurrency=2)
    cluster.long_running_worker()
    cluster.beat()
    pipeline.add_games({"g1": "running", "g2": "running"}, current_turn=3)
    ids = pipeline.xadd_health(
        [
            event("g1", "container_exited", 1, '{"exit_code": 1}'),
            event("g2", "probe_failed", 2, '{"consecutive_failures": 3, "last_error": "x"}'),
            event("g1", "probe_recovered", 3, '{"prior_failures": 3}'),
        ]
    )
    pipeline.wait_settled(ids, {"g1": ids[2], "g2": ids[1]})
    rows = pipeline.rows()
    lobby = pipeline.lobby_snapshots()
    assert rows["g1"] == ("running", "healthy", 3)

    done = replay(pipeline, "--from", ids[0])
    assert done.returncode == 0, done.stderr
    pipeline.wait_settled(ids, {"g1": ids[2], "g2": ids[1]})
    assert pipeline.rows() == rows
    assert pipeline.lobby_snapshots() == lobby  # nothing published twice

    # As after restoring the database from a backup taken before g1's entries were applied.
    with pipeline.engine.begin() as conn:
        conn.execute(text("DELETE FROM gamemaster.health_event_cursors WHERE game_id = 'g1'"))
        conn.execute(
            text("UPDATE gamemaster.runtime_records SET status = 'running', engine_health = '' WHERE game_id = 'g1'")
        )
    done = replay(pipeline, "--from", ids[0])
    assert done.returncode == 0, done.stderr
    pipeline.wait_settled(ids, {"g1": ids[2], "g2": ids[1]})
    assert pipeline.rows() == rows


def test_a_replay_from_an_entry_the_stream_does_not_have_is_refused_with_what_it_has(pipeline: Pipeline) -> None:
    pipeline.xadd_health([event("g1", "probe_failed", 1, '{"consecutive_failures": 3, "last_error": "x"}')])
    done = replay(pipeline, "--from", "1-0")
    assert done.returncode == 2
    assert "has no entry 1-0" in done.stderr
    assert "oldest entry is" in done.stderr
    assert replay(pipeline, "--from", "yesterday").returncode == 2


def test_a_replay_while_an_earlier_entry_of_the_game_is_still_in_flight_keeps_the_one_at_a_time_result(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    """A replayed entry names its game's true predecessor, so it cannot overtake that entry still in flight.

    The first entry's message is held back in the broker (taken out of the queue, put back later) while
    the next two are handed on, parked, and replayed; then the held message arrives last.
    """
    pipeline.add_games({"g1": "running"}, current_turn=3)
    queue = "gamemaster.health_events"
    cluster.env.update(GALAXY_ORDER_REPAIR_AFTER_SECONDS="600")  # the held message is late, not lost
    cluster.pool_worker("control", concurrency=1, queues="galaxy.periodic")  # the supervisor, the relays
    cluster.long_running_worker()
    cluster.beat()
    (first,) = pipeline.xadd_health([event("g1", "container_oom", 1, '{"exit_code": 137}')])
    wait_until(lambda: pipeline.offset() == first and pipeline.r.llen(queue) == 1, timeout=30, what="the handoff")
    in_flight = str(pipeline.r.rpop(queue))  # the oldest message: held back, as a slow broker path would
    later = pipeline.xadd_health(
        [
            event("g1", "probe_recovered", 2, '{"prior_failures": 0}'),
            event("g1", "container_exited", 3, '{"exit_code": 3}'),
        ]
    )
    cluster.pool_worker("pool", concurrency=1, queues=queue)
    wait_until(lambda: pipeline.parked_count("g1") == 2, timeout=30, what="the two later entries to wait for the first")
    done = replay(pipeline, "--from", later[0])
    assert done.returncode == 0, done.stderr
    wait_until(lambda: pipeline.r.llen(queue) == 0, timeout=30, what="the replayed entries to be taken")
    time.sleep(1)
    assert pipeline.rows(["g1"])["g1"] == ("running", "", 3), "a replayed entry overtook the one in flight"
    pipeline.r.rpush(queue, in_flight)  # the held message arrives, after its successors' replay

    pipeline.wait_settled([first, *later], {"g1": later[-1]})
    assert pipeline.rows(["g1"])["g1"] == ("engine_unreachable", "exited", 3)
    assert [s[:2] for s in pipeline.lobby_snapshots(["g1"])["g1"]] == [
        ("engine_unreachable", "oom"),
        ("running", "healthy"),
        ("engine_unreachable", "exited"),
    ]
