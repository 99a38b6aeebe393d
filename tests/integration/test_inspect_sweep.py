"""The inspect sweep (seed 003) against a real Docker Engine, PostgreSQL and Redis.

Containers from the locally built busybox image, host networking.  The sweep
lists the managed containers once; only those the list cannot vouch for are
inspected; restarts under a restart policy and a failing HEALTHCHECK publish
``inspect_unhealthy`` with the SPEC's details and leave the seed-000 snapshot.
"""

from __future__ import annotations

from typing import cast

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from tests.support.rtm_rig import Rig, new_game_id, until

pytestmark = pytest.mark.integration


def inspections(result: str) -> float:
    return REGISTRY.get_sample_value("galaxy_rtm_inspections_total", {"result": result}) or 0.0


def test_a_healthy_running_engine_is_inspected_once_for_its_baseline_then_vouched_for_by_the_list(rig: Rig) -> None:
    game = new_game_id()
    rig.start(game)
    healthy, vouched = inspections("healthy"), inspections("vouched")
    first = rig.sweep()
    assert first.to_inspect == [(game, rig.records.running()[0].container_id, 0)]
    assert rig.sweep().vouched == [game]
    assert rig.inspected == [game]
    assert rig.events(game) == []
    assert (inspections("healthy") - healthy, inspections("vouched") - vouched) == (1, 1)


def test_restarts_under_a_restart_policy_publish_inspect_unhealthy_with_the_growing_restart_count(rig: Rig) -> None:
    game = new_game_id()
    container_id = rig.start(game, ["sh", "-c", "sleep 1; exit 1"], restart_policy={"Name": "on-failure"})
    rig.sweep()  # the baseline
    seen: list[int] = []

    def two_growing() -> bool:
        rig.sweep()
        seen[:] = [int(cast(int, d["restart_count"])) for d in rig.events(game)]
        return len(set(seen)) >= 2

    until(two_growing, "two inspect_unhealthy events with different restart counts", timeout=60)
    assert seen == sorted(seen)
    assert seen[0] >= 1
    assert all(set(d) == {"restart_count", "state", "health"} for d in rig.events(game))
    status, source, details = rig.snapshot(game)
    assert (status, source) == ("inspect_unhealthy", "inspect")
    assert details["restart_count"] == seen[-1]
    assert rig.client.containers.get(container_id).attrs["RestartCount"] >= seen[-1]


def test_a_failing_healthcheck_publishes_inspect_unhealthy_with_health_unhealthy(rig: Rig) -> None:
    game = new_game_id()
    rig.start(
        game,
        healthcheck={"test": ["CMD", "sh", "-c", "exit 1"], "interval": 200_000_000, "retries": 1},
    )

    def unhealthy_published() -> bool:
        rig.sweep()
        return any(d.get("health") == "unhealthy" for d in rig.events(game))

    until(unhealthy_published, "inspect_unhealthy with health=unhealthy")
    status, source, details = rig.snapshot(game)
    assert (status, source) == ("inspect_unhealthy", "inspect")
    assert details == {"restart_count": 0, "state": "running", "health": "unhealthy"}


def test_a_running_record_whose_container_is_gone_is_left_to_the_reconciler(rig: Rig) -> None:
    game = new_game_id()
    container_id = rig.start(game)
    rig.client.containers.get(container_id).remove(force=True)
    plan = rig.sweep()
    assert plan.missing == [game]
    assert plan.to_inspect == []
    assert rig.events(game) == []


def test_baselines_of_games_no_longer_running_are_pruned_each_sweep(rig: Rig) -> None:
    game = new_game_id()
    rig.start(game)
    rig.sweep()
    assert rig.baselines.get(game) is not None
    with rig.pipeline.engine.begin() as conn:
        conn.execute(text("UPDATE rtmanager.runtime_records SET status = 'stopped' WHERE game_id = :g"), {"g": game})
    assert rig.sweep().pruned == 1
    assert rig.baselines.get(game) is None
