"""End to end on real processes: Docker → Runtime Manager → runtime:health_events → Game Master.

A pool worker, long-running workers (bridge and Docker events listener) and
beat (supervisor, sweeps, relays) run as ``celery`` subprocesses against the
private dockerd, PostgreSQL and Redis.  An OOM kill moves the game's GM record
to ``engine_unreachable`` / ``oom``; a probe recovery moves a game back to
``running`` / ``healthy``; the listener's worker killed with ``kill -9`` while a
container dies is replaced, and the event is published once.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import docker
import pytest
from sqlalchemy import text

from galaxy_tasks.adapters.docker.runtime import GAME_LABEL
from galaxy_tasks.contract import DOCKER_EVENTS_LEASE_KEY
from galaxy_tasks.testing.cluster import FAST_OBSERVATION_SETTINGS, CeleryProcess, Cluster, wait_until
from galaxy_tasks.testing.services import free_loopback_port
from tests.support.docker_engine import ENGINE_IMAGE
from tests.support.pipeline import Pipeline
from tests.support.private_services import PrivateRedis

pytestmark = pytest.mark.e2e

RTM_FAST = FAST_OBSERVATION_SETTINGS


def _register(pipeline: Pipeline, game_id: str, container_id: str, endpoint: str, gm_status: str) -> None:
    pipeline.add_running_engine(game_id, container_id, endpoint)
    pipeline.add_games({game_id: gm_status}, current_turn=4)


def _serving(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return int(reply.status) == 200
    except OSError:
        return False


@pytest.fixture
def rtm_cluster(
    pipeline: Pipeline, cluster: Cluster, docker_host: str, docker_client: docker.DockerClient
) -> Iterator[Cluster]:
    cluster.env.update(RTM_FAST, DOCKER_HOST=docker_host)
    cluster.pool_worker("pool", concurrency=4)
    cluster.long_running_worker()
    cluster.beat()
    yield cluster
    for container in docker_client.containers.list(all=True, filters={"label": GAME_LABEL}):
        container.remove(force=True)


def test_an_oom_kill_turns_the_game_master_record_engine_unreachable_oom(
    pipeline: Pipeline, rtm_cluster: Cluster, docker_client: docker.DockerClient
) -> None:
    game = "e2e-oom"
    container = docker_client.containers.run(
        ENGINE_IMAGE,
        ["sh", "-c", "sleep 4; head -c 200000000 /dev/zero | tail"],
        detach=True,
        network_mode="host",
        labels={GAME_LABEL: game},
        mem_limit="16m",
        memswap_limit="16m",
    )
    _register(pipeline, game, str(container.id), "", "running")
    wait_until(
        lambda: pipeline.rows([game]).get(game) == ("engine_unreachable", "oom", 4),
        timeout=60,
        what="the GM record to become engine_unreachable / oom",
    )
    entries = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange("runtime:health_events"))
    kinds = [f["event_type"] for _, f in entries if f["game_id"] == game]
    assert kinds.count("container_oom") == 1
    assert "container_exited" not in kinds
    with pipeline.engine.connect() as conn:
        snapshot = conn.execute(
            text("SELECT status, source FROM rtmanager.health_snapshots WHERE game_id = :g"), {"g": game}
        ).one()
    assert (snapshot.status, snapshot.source) == ("oom", "docker_event")


def test_a_probe_recovery_turns_the_game_master_record_back_to_running_healthy(
    pipeline: Pipeline, rtm_cluster: Cluster, docker_client: docker.DockerClient
) -> None:
    game, port = "e2e-probe", free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    container = docker_client.containers.run(
        ENGINE_IMAGE,
        detach=True,
        network_mode="host",
        labels={GAME_LABEL: game},
        environment={"ENGINE_PORT": str(port)},
    )
    wait_until(lambda: _serving(f"{url}/healthz"), timeout=20, what="the engine to serve")
    container.exec_run(["killall", "httpd"])
    _register(pipeline, game, str(container.id), url, "engine_unreachable")  # as after an earlier loss
    wait_until(
        lambda: pipeline.rows([game]).get(game) == ("engine_unreachable", "probe_failed", 4),
        timeout=60,
        what="probe_failed to reach the GM record",
    )
    container.exec_run(["httpd", "-p", f"127.0.0.1:{port}", "-h", "/www"])
    wait_until(
        lambda: pipeline.rows([game]).get(game) == ("running", "healthy", 4),
        timeout=60,
        what="probe_recovered to move the GM record back to running / healthy",
    )


def _listener_holder(pipeline: Pipeline, candidates: list[CeleryProcess]) -> CeleryProcess | None:
    holder = pipeline.r.get(DOCKER_EVENTS_LEASE_KEY)
    if holder is None:
        return None
    pid = int(str(holder).split(":")[1])
    return next((p for p in candidates if p.pid == pid), None)


def test_the_listeners_worker_killed_while_a_container_dies_is_replaced_and_the_event_published_once(
    pipeline: Pipeline, cluster: Cluster, docker_host: str, docker_client: docker.DockerClient
) -> None:
    cluster.env.update(RTM_FAST, DOCKER_HOST=docker_host)
    cluster.pool_worker("pool", concurrency=2)
    long_running = [cluster.long_running_worker("lr-a"), cluster.long_running_worker("lr-b")]
    cluster.beat()
    wait_until(
        lambda: _listener_holder(pipeline, long_running) is not None, timeout=30, what="a listener to hold its lease"
    )
    victim = _listener_holder(pipeline, long_running)
    assert victim is not None
    survivor = next(p for p in long_running if p is not victim)

    game = "e2e-takeover"
    container = docker_client.containers.run(
        ENGINE_IMAGE, ["sh", "-c", "sleep 2; exit 7"], detach=True, network_mode="host", labels={GAME_LABEL: game}
    )
    _register(pipeline, game, str(container.id), "", "running")
    time.sleep(1.9)  # the container dies about now
    cluster.kill9(victim)

    wait_until(
        lambda: _listener_holder(pipeline, long_running) is survivor,
        timeout=30,
        what="the supervisor to start the listener on the surviving long-running worker",
    )
    wait_until(
        lambda: pipeline.rows([game]).get(game) == ("engine_unreachable", "exited", 4),
        timeout=60,
        what="container_exited to reach the GM record",
    )
    time.sleep(3)  # room for a duplicate to show up, were there one
    entries = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange("runtime:health_events"))
    exited = [f for _, f in entries if f["game_id"] == game and f["event_type"] == "container_exited"]
    assert len(exited) == 1
    assert exited[0]["details"] == '{"exit_code":7}'


def _snapshot_status(pipeline: Pipeline, game_id: str) -> str | None:
    with pipeline.engine.connect() as conn:
        value = conn.execute(
            text("SELECT status FROM rtmanager.health_snapshots WHERE game_id = :g"), {"g": game_id}
        ).scalar_one_or_none()
    return None if value is None else str(value)


def test_with_redis_stopped_while_a_container_dies_the_snapshot_is_committed_and_the_event_arrives_once_back(
    redis_outage_pipeline: Pipeline,
    private_redis: PrivateRedis,
    docker_host: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    pipeline = redis_outage_pipeline
    cluster = Cluster(env={**pipeline.env, **RTM_FAST, "DOCKER_HOST": docker_host}, log_dir=tmp_path / "logs")
    cluster.log_dir.mkdir()
    try:
        cluster.pool_worker("pool", concurrency=2)
        cluster.long_running_worker()
        cluster.beat()
        wait_until(lambda: pipeline.r.exists(DOCKER_EVENTS_LEASE_KEY), timeout=30, what="the listener to start")
        game = "e2e-redis-down"
        container = docker_client.containers.run(
            ENGINE_IMAGE, ["sh", "-c", "sleep 3; exit 5"], detach=True, network_mode="host", labels={GAME_LABEL: game}
        )
        _register(pipeline, game, str(container.id), "", "running")
        time.sleep(1)
        private_redis.stop()  # the container dies while Redis is down
        wait_until(
            lambda: _snapshot_status(pipeline, game) == "exited",
            timeout=30,
            what="the snapshot to be committed while Redis is down",
        )
        assert not private_redis.alive()
        private_redis.start()
        wait_until(
            lambda: pipeline.rows([game]).get(game) == ("engine_unreachable", "exited", 4),
            timeout=90,
            what="container_exited to reach the GM record once Redis is back",
        )
        time.sleep(3)  # room for a duplicate to show up, were there one
        entries = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange("runtime:health_events"))
        exited = [f for _, f in entries if f["game_id"] == game and f["event_type"] == "container_exited"]
        assert [f["details"] for f in exited] == ['{"exit_code":5}']
    finally:
        cluster.stop_all()
        for container in docker_client.containers.list(all=True, filters={"label": GAME_LABEL}):
            container.remove(force=True)
        for log in sorted(cluster.log_dir.glob("*.log")):
            print(f"===== {log.name} (tail) =====\n{log.read_text(errors='replace')[-3000:]}")
