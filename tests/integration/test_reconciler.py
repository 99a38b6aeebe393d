"""The reconciler against a real Docker Engine, PostgreSQL and Redis.

A running record whose container is gone is reported once (``container_disappeared``,
the record leaves ``running``), whoever sees the loss first; managed
containers that are no game's current container are reported.
"""

from __future__ import annotations

import json
import time
from typing import cast

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from galaxy_tasks.contract import HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.jobs import StartJob
from galaxy_tasks.ports.rtmanager import ListedContainer
from galaxy_tasks.service.jobs import run_start_job
from tests.support.docker_engine import ENGINE_IMAGE
from tests.support.job_rig import JobRig
from tests.support.rtm_rig import Rig, new_game_id

pytestmark = pytest.mark.integration


def _disappeared(rig: Rig, game_id: str) -> list[dict[str, str]]:
    entries = cast(list[tuple[str, dict[str, str]]], rig.pipeline.r.xrange(HEALTH_EVENTS_STREAM))
    return [f for _, f in entries if f["game_id"] == game_id and f["event_type"] == "container_disappeared"]


def test_a_running_record_whose_container_was_removed_is_reported_once_and_leaves_running(rig: Rig) -> None:
    game = new_game_id()
    container_id = rig.start(game)
    rig.client.containers.get(container_id).remove(force=True)
    first = rig.reconcile()
    assert first.disappeared == [game]
    assert rig.reconcile().disappeared == []
    (entry,) = _disappeared(rig, game)
    assert entry["container_id"] == container_id
    assert json.loads(entry["details"])["reason"].startswith("reconciler")
    assert rig.record_status(game) == "disappeared"
    with rig.pipeline.engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, source FROM rtmanager.health_snapshots WHERE game_id = :g"), {"g": game}
        ).one()
    assert (row.status, row.source) == ("container_disappeared", "docker_event")


def test_a_loss_the_events_listener_reported_first_is_not_reported_again(rig: Rig) -> None:
    game = new_game_id()
    container_id = rig.start(game)
    rig.client.containers.get(container_id).remove(force=True)
    at = int(time.time() * 1000)
    assert rig.publish_loss(HealthEvent.container_disappeared(game, container_id, at)) is not None  # the listener
    result = rig.reconcile()
    assert (result.disappeared, result.already_reported) == ([], [])  # the record is no longer running
    assert len(_disappeared(rig, game)) == 1


def test_the_same_loss_published_twice_at_once_is_recorded_once(rig: Rig) -> None:
    game = new_game_id()
    container_id = rig.start(game)
    at = int(time.time() * 1000)
    event = HealthEvent.container_disappeared(game, container_id, at)
    outcomes = [rig.publish_loss(event), rig.publish_loss(event)]
    assert sum(outcome is not None for outcome in outcomes) == 1
    assert len(_disappeared(rig, game)) == 1


def test_managed_containers_that_are_no_games_current_container_at_two_reconciles_are_reported(rig: Rig) -> None:
    game = new_game_id()
    rig.start(game)
    orphan = rig.client.containers.run(
        ENGINE_IMAGE, ["sleep", "300"], detach=True, network_mode="host", labels={"galaxy.game_id": "nobody"}
    )
    assert rig.reconcile().orphans == []  # once could be a start job that has not committed yet
    result = rig.reconcile()
    assert result.orphans == [orphan.id]
    report = rig.orphans.load()
    assert report is not None
    assert [c["container_id"] for c in report["containers"]] == [orphan.id]
    assert REGISTRY.get_sample_value("galaxy_rtm_orphan_containers") == 1


def test_a_container_unclaimed_at_one_reconcile_and_claimed_by_the_next_is_never_reported(rig: Rig) -> None:
    """A start job's container between its creation and the job's commit."""
    game = new_game_id()
    container = rig.client.containers.run(
        ENGINE_IMAGE, ["sleep", "300"], detach=True, network_mode="host", labels={"galaxy.game_id": game}
    )
    assert rig.reconcile().orphans == []
    rig.pipeline.add_running_engine(game, str(container.id))
    assert rig.reconcile().orphans == []
    assert rig.orphans.suspects() == set()


def test_a_running_record_whose_container_exited_3_is_one_container_exited_3_and_the_record_exited(rig: Rig) -> None:
    game = new_game_id()
    container_id = rig.start(game, ["sh", "-c", "exit 3"])
    rig.client.containers.get(container_id).wait(timeout=20)
    labels = {"finding": "died", "by": "reconciler"}
    before = REGISTRY.get_sample_value("galaxy_rtm_relist_findings_total", labels) or 0.0
    assert rig.reconcile().died == [game]
    assert rig.reconcile().died == []
    assert (REGISTRY.get_sample_value("galaxy_rtm_relist_findings_total", labels) or 0.0) - before == 1
    assert rig.event_types(game) == ["container_exited"]
    assert rig.events(game) == [{"exit_code": 3}]
    assert rig.record_status(game) == "exited"
    assert rig.snapshot(game)[:2] == ("exited", "docker_event")


def test_an_exited_record_whose_container_docker_runs_again_is_running_again_without_an_event(rig: Rig) -> None:
    game = new_game_id()
    container_id = rig.start(game, ["sh", "-c", "sleep 600"])
    container = rig.client.containers.get(container_id)
    container.kill()
    assert rig.reconcile().died == [game]
    container.start()  # as dockerd starts an `always` container again after its own restart
    assert rig.reconcile().revived == [game]
    assert rig.record_status(game) == "running"
    assert rig.event_types(game) == ["container_exited"], "the game stays down until its recovery is seen"


def test_a_start_job_committing_while_the_reconciler_lists_docker_is_never_a_false_disappearance(
    rig: Rig, jobs: JobRig
) -> None:
    """The reconcile/start race: Docker's list is slow, and a start job commits its new container meanwhile."""
    game = new_game_id()
    list_docker = rig.runtime.list_managed

    def slow_list_during_a_start() -> dict[str, ListedContainer]:
        listed = list_docker()  # the list is taken before the start's container exists ...
        run_start_job(jobs.ctx, StartJob(game, ENGINE_IMAGE), job_id=f"start-{game}")  # ... which commits now
        return listed

    rig.runtime.list_managed = slow_list_during_a_start  # type: ignore[method-assign]
    try:
        result = rig.reconcile()
    finally:
        rig.runtime.list_managed = list_docker  # type: ignore[method-assign]
    assert game not in result.disappeared
    assert rig.event_types(game) == ["container_started"]
    assert rig.record_status(game) == "running"
