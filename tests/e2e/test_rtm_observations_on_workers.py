"""Each Runtime Manager observation through real celery processes and the private dockerd.

A pool worker, the long-running worker (Docker events listener, bridge) and beat
(sweeps, reconciler, relays) run as subprocesses; every observation must reach
``runtime:health_events`` the expected number of times with the SPEC's details,
and leave the ``rtmanager.health_snapshots`` row seed ``000`` maps it to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import cast

import docker
import pytest
from sqlalchemy import text

from galaxy_tasks.adapters.docker.runtime import GAME_LABEL
from galaxy_tasks.testing.cluster import Cluster, wait_until
from galaxy_tasks.testing.services import free_loopback_port
from tests.support.docker_engine import ENGINE_IMAGE
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.e2e

FAST = {
    "GALAXY_PROBE_INTERVAL_SECONDS": "1",
    "GALAXY_PROBE_FAILURE_THRESHOLD": "2",
    "GALAXY_PROBE_SUCCESS_THRESHOLD": "1",
    "GALAXY_PROBE_STARTUP_GRACE_SECONDS": "0",
    "GALAXY_PROBE_TIMEOUT_SECONDS": "1",
    "GALAXY_INSPECT_INTERVAL_SECONDS": "1",
    "GALAXY_RECONCILE_INTERVAL_SECONDS": "30",
}


class World:
    def __init__(self, pipeline: Pipeline, client: docker.DockerClient) -> None:
        self.pipeline = pipeline
        self.client = client

    def engine(self, game: str, command: list[str] | None = None, endpoint: str = "", **options: object) -> str:
        container = self.client.containers.run(
            ENGINE_IMAGE, command, detach=True, network_mode="host", labels={GAME_LABEL: game}, **options
        )
        self.pipeline.add_running_engine(game, str(container.id), endpoint)
        return str(container.id)

    def events(self, game: str, kind: str) -> list[dict[str, object]]:
        entries = cast(list[tuple[str, dict[str, str]]], self.pipeline.r.xrange("runtime:health_events"))
        return [json.loads(f["details"]) for _, f in entries if f["game_id"] == game and f["event_type"] == kind]

    def snapshot(self, game: str) -> tuple[str, str] | None:
        with self.pipeline.engine.connect() as conn:
            row = conn.execute(
                text("SELECT status, source FROM rtmanager.health_snapshots WHERE game_id = :g"), {"g": game}
            ).one_or_none()
        return None if row is None else (row.status, row.source)


@pytest.fixture
def world(
    pipeline: Pipeline, cluster: Cluster, docker_host: str, docker_client: docker.DockerClient
) -> Iterator[World]:
    cluster.env.update(FAST, DOCKER_HOST=docker_host)
    cluster.pool_worker("pool", concurrency=4)
    cluster.long_running_worker()
    cluster.beat()
    wait_until(lambda: pipeline.r.exists("rtmanager:docker_events:lease"), timeout=30, what="the listener")
    yield World(pipeline, docker_client)
    for container in docker_client.containers.list(all=True, filters={"label": GAME_LABEL}):
        container.remove(force=True)


def test_a_process_exiting_3_is_one_container_exited_with_exit_code_3(world: World) -> None:
    world.engine("w-exit", ["sh", "-c", "sleep 1; exit 3"])
    wait_until(lambda: world.events("w-exit", "container_exited"), timeout=30, what="container_exited")
    wait_until(lambda: world.snapshot("w-exit") is not None, timeout=10, what="the snapshot")
    assert world.events("w-exit", "container_exited") == [{"exit_code": 3}]
    # The inspect sweep (every second here) sees the exited container too and, as seed 003 says,
    # publishes inspect_unhealthy each time: the latest snapshot is either observation's.
    assert world.snapshot("w-exit") in {("exited", "docker_event"), ("inspect_unhealthy", "inspect")}


def test_docker_rm_f_is_one_container_disappeared_and_the_record_leaves_running(world: World) -> None:
    container_id = world.engine("w-rm")
    world.client.containers.get(container_id).remove(force=True)
    wait_until(lambda: world.events("w-rm", "container_disappeared"), timeout=30, what="container_disappeared")
    with world.pipeline.engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM rtmanager.runtime_records WHERE game_id = 'w-rm'")).scalar_one()
    assert status == "disappeared"
    assert len(world.events("w-rm", "container_disappeared")) == 1
    assert world.snapshot("w-rm") == ("container_disappeared", "docker_event")


def test_restarts_under_a_restart_policy_are_inspect_unhealthy_with_a_growing_restart_count(world: World) -> None:
    world.engine("w-restart", ["sh", "-c", "sleep 1; exit 1"], restart_policy={"Name": "on-failure"})

    def grown() -> bool:
        counts = [int(cast(int, d["restart_count"])) for d in world.events("w-restart", "inspect_unhealthy")]
        return len(set(counts)) >= 2

    wait_until(grown, timeout=90, what="inspect_unhealthy with two different restart counts")
    counts = [int(cast(int, d["restart_count"])) for d in world.events("w-restart", "inspect_unhealthy")]
    assert counts == sorted(counts)
    # Each restart is a `die` too (container_exited, exit code 1): the latest snapshot is either's.
    assert world.snapshot("w-restart") in {("inspect_unhealthy", "inspect"), ("exited", "docker_event")}


def test_a_failing_healthcheck_is_inspect_unhealthy_with_health_unhealthy(world: World) -> None:
    world.engine("w-hc", healthcheck={"test": ["CMD", "sh", "-c", "exit 1"], "interval": 200_000_000, "retries": 1})
    wait_until(
        lambda: any(d["health"] == "unhealthy" for d in world.events("w-hc", "inspect_unhealthy")),
        timeout=60,
        what="inspect_unhealthy with health=unhealthy",
    )
    assert world.snapshot("w-hc") == ("inspect_unhealthy", "inspect")


def test_an_engine_whose_httpd_stops_is_probe_failed_once_then_probe_recovered_once(world: World) -> None:
    port = free_loopback_port()
    container_id = world.engine("w-probe", endpoint=f"http://127.0.0.1:{port}", environment={"ENGINE_PORT": str(port)})
    container = world.client.containers.get(container_id)
    container.exec_run(["killall", "httpd"])
    wait_until(lambda: world.events("w-probe", "probe_failed"), timeout=60, what="probe_failed")
    assert world.snapshot("w-probe") == ("probe_failed", "probe")
    container.exec_run(["httpd", "-p", f"127.0.0.1:{port}", "-h", "/www"])
    wait_until(lambda: world.events("w-probe", "probe_recovered"), timeout=60, what="probe_recovered")
    wait_until(lambda: world.snapshot("w-probe") == ("healthy", "probe"), timeout=10, what="the healthy snapshot")
    assert len(world.events("w-probe", "probe_failed")) == 1
    assert len(world.events("w-probe", "probe_recovered")) == 1
    assert world.events("w-probe", "probe_failed")[0]["consecutive_failures"] == 2
