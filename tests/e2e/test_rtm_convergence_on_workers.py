"""Convergence to Docker's truth on real processes (SPEC §5 "RTM: convergence"), with lowered intervals.

A pool worker, the long-running worker (listener, bridges) and beat run as
``celery`` subprocesses on the private dockerd, PostgreSQL and Redis; the
Lobby's start and stop jobs go through ``runtime:start_jobs`` /
``runtime:stop_jobs``.  Every wait is derived from the bounds the settings
give (``Settings.convergence_bounds``), so the tests also hold docs/architecture.md's
formula to what the system does.  Games are named after the loopback port
their engine serves on (host networking), as the demo's are.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Iterator
from typing import Any, cast

import docker
import pytest
from sqlalchemy import text

from galaxy_tasks.adapters.docker.runtime import GAME_LABEL
from galaxy_tasks.config import Settings
from galaxy_tasks.contract import DOCKER_EVENTS_LEASE_KEY, ORPHANS_KEY
from galaxy_tasks.domain.rtmanager.convergence import ConvergenceBounds
from galaxy_tasks.testing.cluster import FAST_SETTINGS, CeleryProcess, Cluster, wait_until
from galaxy_tasks.testing.engines import TEST_ENGINE_ENV
from galaxy_tasks.testing.services import free_loopback_port
from tests.support.docker_engine import ENGINE_IMAGE, PrivateDockerd
from tests.support.lobby import Lobby
from tests.support.pipeline import Pipeline
from tests.support.slow_docker import SlowListDocker

pytestmark = pytest.mark.e2e

CONVERGE_FAST = {
    **TEST_ENGINE_ENV,
    "GALAXY_ENGINE_ENDPOINT_TEMPLATE": "http://127.0.0.1:{game_id}",
    "GALAXY_PROBE_INTERVAL_SECONDS": "1",
    "GALAXY_PROBE_FAILURE_THRESHOLD": "2",
    "GALAXY_PROBE_SUCCESS_THRESHOLD": "1",
    "GALAXY_PROBE_STARTUP_GRACE_SECONDS": "1",
    "GALAXY_PROBE_TIMEOUT_SECONDS": "1",
    "GALAXY_INSPECT_INTERVAL_SECONDS": "2",
    "GALAXY_RECONCILE_INTERVAL_SECONDS": "3",
    "GALAXY_DOCKER_TIMEOUT_SECONDS": "5",
}
START_UP_SECONDS = 30
"""Workers and beat starting, the supervisor launching the listener: before any bound applies."""


def _bounds() -> ConvergenceBounds:
    return Settings.from_env({**FAST_SETTINGS, **CONVERGE_FAST}).convergence_bounds()


class Observer:
    """What the Lobby and an operator see: the stream, the Game Master's rows, the RTM's records."""

    def __init__(self, pipeline: Pipeline, client: docker.DockerClient) -> None:
        self.pipeline = pipeline
        self.client = client
        self.lobby = Lobby(pipeline, client)

    def events(self, game: str) -> list[tuple[str, dict[str, Any]]]:
        entries = cast(list[tuple[str, dict[str, str]]], self.pipeline.r.xrange("runtime:health_events"))
        return [(f["event_type"], json.loads(f["details"])) for _, f in entries if f["game_id"] == game]

    def kinds(self, game: str) -> list[str]:
        return [kind for kind, _ in self.events(game)]

    def gm(self, game: str) -> tuple[str, str] | None:
        row = self.pipeline.rows([game]).get(game)
        return None if row is None else (row[0], row[1])

    def wait_gm(self, game: str, want: tuple[str, str], timeout: float) -> float:
        """Wait until the Game Master's row is ``want``; how long it took."""
        started = time.monotonic()
        wait_until(lambda: self.gm(game) == want, timeout=timeout, what=f"GM row of {game} to be {want}")
        return time.monotonic() - started

    def record_status(self, game: str) -> str:
        with self.pipeline.engine.connect() as conn:
            return str(
                conn.execute(
                    text("SELECT status FROM rtmanager.runtime_records WHERE game_id = :g"), {"g": game}
                ).scalar_one()
            )

    def current(self, game: str) -> str:
        with self.pipeline.engine.connect() as conn:
            return str(
                conn.execute(
                    text("SELECT current_container_id FROM rtmanager.runtime_records WHERE game_id = :g"), {"g": game}
                ).scalar_one()
            )

    def healthy_game(self) -> tuple[str, str]:
        """A new game started by a start job, once the Game Master shows it healthy: (game, container id)."""
        game = _game()
        container_id = self.start_game(game)
        self.wait_gm(game, ("running", "healthy"), timeout=30)
        return game, container_id

    def start_game(self, game: str) -> str:
        """A start job through ``runtime:start_jobs``; the new container id, once the GM row says healthy."""
        if self.gm(game) is None:
            self.pipeline.add_games({game: "running"})
        before = len(self.lobby.results(game))
        self.lobby.start(game)
        (*_, result) = self.lobby.wait_results(game, before + 1, timeout=60)
        assert (result["outcome"], result["error_code"]) == ("success", ""), result
        return result["container_id"]

    def engine(self, game: str, command: list[str] | None = None, **options: Any) -> str:
        """An engine container run by hand (as if started before), registered as the game's running one."""
        container = self.client.containers.run(
            ENGINE_IMAGE,
            command,
            detach=True,
            network_mode="host",
            labels={GAME_LABEL: game},
            environment={"ENGINE_PORT": game},
            **options,
        )
        self.pipeline.add_running_engine(game, str(container.id), f"http://127.0.0.1:{game}")
        self.pipeline.add_games({game: "running"})
        return str(container.id)


def _rtm(cluster: Cluster, docker_host: str, **extra: str) -> None:
    cluster.env.update(CONVERGE_FAST, DOCKER_HOST=docker_host, **extra)
    cluster.pool_worker("pool", concurrency=4)
    cluster.long_running_worker()
    cluster.beat()


@pytest.fixture
def observer(pipeline: Pipeline, docker_client: docker.DockerClient) -> Iterator[Observer]:
    yield Observer(pipeline, docker_client)
    for container in docker_client.containers.list(all=True, filters={"label": GAME_LABEL}):
        container.remove(force=True)


def _game() -> str:
    return str(free_loopback_port())


CRASHING_ENGINE = [
    "sh",
    "-c",
    'httpd -p "127.0.0.1:$ENGINE_PORT" -h /www; '
    "while [ ! -e /tmp/crash ]; do sleep 0.2; done; rm -f /tmp/crash; exit 2",
]
"""Serves like the engine until ``/tmp/crash`` appears, then exits 2 (and serves again when restarted)."""


def test_a_crash_the_restart_policy_restarts_is_on_the_stream_and_the_game_is_back_within_the_bound(
    observer: Observer, cluster: Cluster, docker_host: str
) -> None:
    _rtm(cluster, docker_host)
    game = _game()
    container = observer.engine(game, CRASHING_ENGINE, restart_policy={"Name": "on-failure", "MaximumRetryCount": 3})
    wait_until(lambda: observer.pipeline.r.exists(DOCKER_EVENTS_LEASE_KEY), timeout=START_UP_SECONDS, what="listener")
    time.sleep(1)  # the listener reads from now on
    observer.client.containers.get(container).exec_run(["touch", "/tmp/crash"])
    wait_until(lambda: "container_exited" in observer.kinds(game), timeout=20, what="the crash on the stream")
    observer.wait_gm(game, ("engine_unreachable", "exited"), timeout=10)
    took = observer.wait_gm(game, ("running", "healthy"), timeout=3 * _bounds().recovery_seconds)
    assert took <= _bounds().recovery_seconds, f"recovery took {took:.1f} s > {_bounds().recovery_seconds} s"
    assert ("container_exited", {"exit_code": 2}) in observer.events(game)
    assert "probe_failed" not in observer.kinds(game)
    assert observer.kinds(game)[-1] == "probe_recovered"
    assert observer.record_status(game) == "running"
    assert observer.client.containers.get(container).attrs["RestartCount"] == 1


def test_an_engine_that_exited_while_the_system_was_stopped_is_reported_once_at_start_and_stays_quiet(
    observer: Observer, cluster: Cluster, docker_host: str
) -> None:
    game = _game()
    container = observer.engine(game, ["sh", "-c", "exit 3"])
    wait_until(lambda: observer.client.containers.get(container).status == "exited", timeout=20, what="the exit")
    _rtm(cluster, docker_host)
    observer.wait_gm(game, ("engine_unreachable", "exited"), timeout=START_UP_SECONDS + _bounds().missed_death_seconds)
    assert observer.events(game) == [("container_exited", {"exit_code": 3})]
    assert observer.record_status(game) == "exited"
    quiet = 10 * Settings.from_env(CONVERGE_FAST).inspect_interval_seconds  # ten sweeps (a minute's worth at 6/min)
    time.sleep(quiet)
    assert observer.kinds(game).count("inspect_unhealthy") <= 1
    assert observer.kinds(game).count("container_exited") == 1
    assert observer.gm(game) == ("engine_unreachable", "exited")


def _listener_process(pipeline: Pipeline, processes: list[CeleryProcess]) -> CeleryProcess:
    holder = pipeline.r.get(DOCKER_EVENTS_LEASE_KEY)
    assert holder is not None, "nobody holds the listener's lease"
    pid = int(str(holder).split(":")[1])
    return next(p for p in processes if p.pid == pid)


def test_a_death_while_the_listener_is_frozen_and_dockers_buffer_overflows_is_found_within_the_bound(
    observer: Observer, cluster: Cluster, docker_host: str
) -> None:
    _rtm(cluster, docker_host)
    game = _game()
    container = observer.engine(game)
    wait_until(lambda: observer.pipeline.r.exists(DOCKER_EVENTS_LEASE_KEY), timeout=START_UP_SECONDS, what="listener")
    frozen = _listener_process(observer.pipeline, cluster.processes)
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        observer.client.containers.get(container).kill()
        for _ in range(160):  # > 300 events of containers nobody manages: Docker keeps 256
            observer.client.containers.create(ENGINE_IMAGE, ["true"], network_mode="host").remove()
        time.sleep(float(FAST_SETTINGS["GALAXY_LEASE_TTL_SECONDS"]) + 1)  # frozen past its lease
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    took = observer.wait_gm(game, ("engine_unreachable", "exited"), timeout=3 * _bounds().missed_death_seconds)
    assert took <= _bounds().missed_death_seconds, f"took {took:.1f} s > {_bounds().missed_death_seconds} s"
    assert observer.events(game) == [("container_exited", {"exit_code": 137})]
    assert observer.record_status(game) == "exited"


def test_a_foreign_labelled_container_dying_next_to_a_healthy_game_leaves_it_healthy_and_is_an_orphan(
    observer: Observer, cluster: Cluster, docker_host: str
) -> None:
    _rtm(cluster, docker_host)
    game, _ = observer.healthy_game()
    foreign = observer.client.containers.run(
        ENGINE_IMAGE, ["sh", "-c", "sleep 1; exit 5"], detach=True, network_mode="host", labels={GAME_LABEL: game}
    )
    reconcile = Settings.from_env(CONVERGE_FAST).reconcile_interval_seconds

    def reported_orphan() -> bool:
        raw = observer.pipeline.r.get(ORPHANS_KEY)
        return raw is not None and foreign.id in {c["container_id"] for c in json.loads(raw)["containers"]}

    wait_until(reported_orphan, timeout=4 * reconcile + 10, what="the foreign container to show as an orphan")
    assert observer.kinds(game) == ["container_started"]
    assert observer.gm(game) == ("running", "healthy")
    assert observer.record_status(game) == "running"


def test_a_stop_job_then_a_start_job_publish_no_exit_and_the_game_is_healthy_again_by_itself(
    observer: Observer, cluster: Cluster, docker_host: str
) -> None:
    _rtm(cluster, docker_host)
    game, _ = observer.healthy_game()
    observer.lobby.stop(game, "admin_request")
    observer.lobby.wait_results(game, 2)
    time.sleep(2 * Settings.from_env(CONVERGE_FAST).reconcile_interval_seconds)
    observer.start_game(game)
    observer.wait_gm(game, ("running", "healthy"), timeout=_bounds().recovery_seconds)
    assert observer.kinds(game) == ["container_started", "container_started"]
    raw = observer.pipeline.r.get(ORPHANS_KEY)
    orphans = [] if raw is None else json.loads(raw)["containers"]
    assert [o for o in orphans if o["game_id"] == game] == [], "a container the RTM retired is no orphan"


def test_an_engine_killed_for_good_then_a_start_job_brings_the_game_back_by_itself(
    observer: Observer, cluster: Cluster, docker_host: str
) -> None:
    _rtm(cluster, docker_host)
    game, first = observer.healthy_game()
    observer.client.containers.get(first).kill()
    observer.wait_gm(game, ("engine_unreachable", "exited"), timeout=_bounds().missed_death_seconds)
    assert observer.record_status(game) == "exited"
    second = observer.start_game(game)
    assert second != first
    took = observer.wait_gm(game, ("running", "healthy"), timeout=3 * _bounds().recovery_seconds)
    assert took <= _bounds().recovery_seconds
    assert observer.kinds(game) == ["container_started", "container_exited", "container_started", "probe_recovered"]


def test_a_helper_process_oom_killed_in_a_serving_engine_leaves_the_game_running_and_healthy(
    observer: Observer, cluster: Cluster, docker_host: str
) -> None:
    _rtm(cluster, docker_host)
    game, container_id = observer.healthy_game()  # GALAXY_ENGINE_MEMORY_LIMIT=64m
    container = observer.client.containers.get(container_id)
    helper = container.exec_run(["sh", "-c", "head -c 400000000 /dev/zero | tail"])
    assert helper.exit_code == 137, "the kernel OOM-killed the helper"
    time.sleep(_bounds().recovery_seconds)
    container.reload()
    assert container.status == "running"
    assert observer.kinds(game) == ["container_started"]
    assert observer.gm(game) == ("running", "healthy")


def test_dockerd_restarted_under_a_running_system_leaves_every_game_in_its_true_state(
    pipeline: Pipeline, cluster: Cluster, own_dockerd: PrivateDockerd
) -> None:
    client = docker.DockerClient(base_url=own_dockerd.host, timeout=60)
    observer = Observer(pipeline, client)
    _rtm(cluster, own_dockerd.host)
    comes_back, stays_down = _game(), _game()
    observer.engine(comes_back, restart_policy={"Name": "always"})
    observer.engine(stays_down)
    wait_until(lambda: observer.pipeline.r.exists(DOCKER_EVENTS_LEASE_KEY), timeout=START_UP_SECONDS, what="listener")
    own_dockerd.stop()  # its containers stop with it
    own_dockerd.start()  # and the `always` one is started again
    bounds = _bounds()
    reconcile = Settings.from_env(CONVERGE_FAST).reconcile_interval_seconds
    observer.wait_gm(
        stays_down, ("engine_unreachable", "exited"), timeout=START_UP_SECONDS + bounds.missed_death_seconds
    )
    assert observer.record_status(stays_down) == "exited"
    assert client.containers.get(f"{observer.current(comes_back)}").status == "running"
    wait_until(
        lambda: observer.record_status(comes_back) == "running" and observer.gm(comes_back)[0] == "running",  # type: ignore[index]
        timeout=START_UP_SECONDS + reconcile + bounds.recovery_seconds,
        what="the game whose engine Docker started again to be running",
    )
    kinds = observer.kinds(comes_back)
    if kinds:  # the listener saw its stop: then it was down, and its recovery was observed
        assert kinds[-1] == "probe_recovered", kinds
        assert observer.gm(comes_back) == ("running", "healthy")
    client.close()


def test_starts_committing_while_a_slow_docker_list_is_out_are_never_reported_disappeared(
    observer: Observer, cluster: Cluster, docker_host: str
) -> None:
    """The reconcile/start race on worker processes: every container list answers 2 s late."""
    slow = SlowListDocker(docker_host, delay_seconds=2.0)
    try:
        _rtm(cluster, slow.host, GALAXY_RECONCILE_INTERVAL_SECONDS="1", GALAXY_INSPECT_INTERVAL_SECONDS="60")
        games = [_game() for _ in range(4)]
        for game in games:
            wait_until(lambda: slow.lists_delayed > 0, timeout=START_UP_SECONDS, what="a slow list")
            time.sleep(random.uniform(0.2, 1.5))  # somewhere inside a reconcile's slow list
            observer.start_game(game)
        for game in games:
            observer.wait_gm(game, ("running", "healthy"), timeout=30)
        time.sleep(3)  # the reconciles that were out during the last start have answered
        assert {game: observer.kinds(game) for game in games} == {game: ["container_started"] for game in games}
        assert all(observer.record_status(game) == "running" for game in games)
        assert slow.lists_delayed >= len(games)
    finally:
        cluster.stop_all()
        slow.close()
