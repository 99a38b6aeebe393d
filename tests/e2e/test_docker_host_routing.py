"""Several Docker hosts: every Docker-bound task reaches only the queue of the host running its game.

Two "Docker hosts" ``dh1`` and ``dh2`` (``GALAXY_DOCKER_HOSTS=dh1,dh2``), each with its own RTM
worker (``-Q rtmanager.docker.<host>,rtmanager.jobs.<host>``, ``GALAXY_DOCKER_HOST_NAME``) and its
own long-running worker (``galaxy.long_running.<host>``: its Docker events listener); a shared
pool worker places the Lobby's jobs and runs the Game Master.  Both hosts' workers talk to the
test's private dockerd here, telling their containers apart by the ``galaxy.docker_host`` label —
on real machines each has its own Docker Engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import cast

import docker
import pytest
from sqlalchemy import text

from galaxy_tasks.adapters.docker.runtime import GAME_LABEL, HOST_LABEL
from galaxy_tasks.testing.cluster import CeleryProcess, Cluster, wait_until
from galaxy_tasks.testing.engines import TEST_ENGINE_ENV
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.e2e

HOSTS = ("dh1", "dh2")


def succeeded(worker: CeleryProcess, task: str) -> list[str]:
    """Game ids in the results of ``task`` this worker logged as succeeded."""
    lines = [line for line in worker.log_text().splitlines() if f"Task {task}[" in line and "succeeded" in line]
    return [m.group(1) for line in lines for m in [re.search(r"'game_id': '([^']+)'", line)] if m]


@pytest.fixture
def hosts(
    pipeline: Pipeline, cluster: Cluster, docker_host: str, docker_client: docker.DockerClient
) -> Iterator[dict[str, CeleryProcess]]:
    cluster.env.update(
        TEST_ENGINE_ENV,
        DOCKER_HOST=docker_host,
        GALAXY_DOCKER_HOSTS=",".join(HOSTS),
        GALAXY_INSPECT_INTERVAL_SECONDS="1",
        GALAXY_PROBE_INTERVAL_SECONDS="60",
        GALAXY_RECONCILE_INTERVAL_SECONDS="60",
    )
    cluster.pool_worker("shared", concurrency=2, queues="gamemaster.health_events,rtmanager.jobs")
    cluster.long_running_worker("long-running-shared")
    workers: dict[str, CeleryProcess] = {}
    for host in HOSTS:
        cluster.env["GALAXY_DOCKER_HOST_NAME"] = host
        workers[host] = cluster.pool_worker(
            f"rtm-{host}", concurrency=2, queues=f"rtmanager.docker.{host},rtmanager.jobs.{host}"
        )
        cluster.pool_worker(f"long-running-{host}", concurrency=3, queues=f"galaxy.long_running.{host}", pool="threads")
    del cluster.env["GALAXY_DOCKER_HOST_NAME"]
    cluster.beat()
    wait_until(
        lambda: (
            all(pipeline.r.exists(f"rtmanager:docker_events:lease:{h}") for h in HOSTS)
            and pipeline.r.exists("rtmanager:stream_bridge:start_jobs:lease")
        ),
        timeout=60,
        what="each host's events listener and the job bridges",
    )
    yield workers
    for container in docker_client.containers.list(all=True, filters={"label": GAME_LABEL}):
        container.remove(force=True)


def results(pipeline: Pipeline, game: str) -> list[dict[str, str]]:
    entries = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange("runtime:job_results"))
    return [fields for _, fields in entries if fields["game_id"] == game]


def test_jobs_inspects_and_docker_events_of_a_game_stay_on_its_own_docker_hosts_queues(
    pipeline: Pipeline, hosts: dict[str, CeleryProcess], docker_client: docker.DockerClient
) -> None:
    games = ["r-1", "r-2", "r-3", "r-4"]
    for game in games:  # one at a time: each placed on the host running fewer games
        pipeline.r.xadd("runtime:start_jobs", {"game_id": game, "image_ref": "galaxy-engine-test:latest"})
        wait_until(lambda g=game: results(pipeline, g), timeout=60, what=f"{game}'s start result")  # type: ignore[misc]
        assert results(pipeline, game)[0]["outcome"] == "success"
    with pipeline.engine.connect() as conn:
        rows = conn.execute(text("SELECT game_id, docker_host FROM rtmanager.runtime_records")).all()
    placed = {str(row.game_id): str(row.docker_host) for row in rows}
    assert placed == {"r-1": "dh1", "r-2": "dh2", "r-3": "dh1", "r-4": "dh2"}
    for game, host in placed.items():
        (container,) = docker_client.containers.list(filters={"label": f"{GAME_LABEL}={game}"})
        assert container.labels[HOST_LABEL] == host

    on = {host: [g for g, h in placed.items() if h == host] for host in HOSTS}
    wait_until(
        lambda: all(set(succeeded(hosts[h], "rtmanager.inspect_container")) == set(on[h]) for h in HOSTS),
        timeout=30,
        what="each host's inspect sweep to inspect its own games",
    )
    for host in HOSTS:
        assert sorted(set(succeeded(hosts[host], "rtmanager.run_game_jobs"))) == on[host]
        assert set(succeeded(hosts[host], "rtmanager.inspect_container")) == set(on[host])

    pipeline.r.xadd("runtime:stop_jobs", {"game_id": "r-2"})
    wait_until(lambda: len(results(pipeline, "r-2")) == 2, timeout=60, what="r-2's stop result")
    assert results(pipeline, "r-2")[1]["outcome"] == "success"
    # The result is on the stream before the worker logs its turn as succeeded: wait for that line.
    wait_until(
        lambda: succeeded(hosts["dh2"], "rtmanager.run_game_jobs").count("r-2") >= 2,
        timeout=10,
        what="dh2's worker to log r-2's stop turn",
    )
    assert succeeded(hosts["dh2"], "rtmanager.run_game_jobs").count("r-2") == 2
    assert "r-2" not in succeeded(hosts["dh1"], "rtmanager.run_game_jobs")

    # A container dies: only its host's listener sees it (the label filter), so it is reported once.
    docker_client.containers.get(_container_of(docker_client, "r-3")).kill()

    def exits() -> list[str]:
        entries = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange("runtime:health_events"))
        return [f["game_id"] for _, f in entries if f["event_type"] == "container_exited"]

    wait_until(lambda: "r-3" in exits(), timeout=30, what="r-3's container_exited")
    assert exits().count("r-3") == 1


def _container_of(client: docker.DockerClient, game: str) -> str:
    (container,) = client.containers.list(filters={"label": f"{GAME_LABEL}={game}"})
    return str(container.id)
