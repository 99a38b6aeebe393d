"""deploy/ runs as documented: its processes, started as real local processes, carry a game through its life.

A real ``docker compose up`` cannot run here (compose's bridge networks use private-range
addresses and no registry is reachable), so each layout is read from its files
(``tests/support/deploy_layout.py``: the rendered compose file; the systemd units with the
environment files the docs describe) and every process is started as the layout says — its
command line, queues, concurrency, environment, and the Docker socket only where the layout gives
one — against this machine's PostgreSQL and Redis and a private dockerd. What is changed, and only
that, is what a single test machine needs: the service URLs point at the test's database (with a
password, which trust authentication ignores) and at a Redis of the test's own that runs with the
deployment's ACL file (its example, passwords filled in: the application as user ``galaxy``, the
test's Lobby as user ``lobby``), given the way the layout gives them (a ``*_FILE`` secret, or the
variable itself), ``DOCKER_HOST`` at the private dockerd,
engines use the host network on loopback, each metrics endpoint and Flower get a free loopback
port, and the intervals are short. Both beats run (the compose file's two replicas; the systemd
unit on "two hosts").

Then, through those processes: ``migrate`` on a new database; two games started through
``runtime:start_jobs``; one dies (``docker kill``) and the Game Master sees it; the other's engine
stops answering its probe and answers again; the beat holding the schedule is killed and the other
takes over; the node running the bridges is killed and the cluster metrics endpoint shows the lag
growing until its restart catches up; no password is on any process's command line.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import psutil
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url

from galaxy_tasks.adapters.docker.runtime import GAME_LABEL
from galaxy_tasks.contract import HEALTH_EVENTS_BRIDGE_KEYS, HEALTH_EVENTS_STREAM
from galaxy_tasks.testing.cluster import FAST_OBSERVATION_SETTINGS, FAST_SETTINGS, REPO, wait_until
from galaxy_tasks.testing.engines import TEST_ENGINE_ENV
from galaxy_tasks.testing.services import drop_database, free_loopback_port, fresh_database_url
from tests.support.deploy_layout import (
    DEPLOY,
    DeployedProcess,
    compose_processes,
    rendered_compose,
    systemd_processes,
)
from tests.support.lobby import Lobby
from tests.support.pipeline import Pipeline
from tests.support.private_services import PrivateRedis

pytestmark = pytest.mark.e2e

DATABASE_PASSWORD = "db-pw-not-on-any-command-line"
REDIS_PASSWORDS = {"galaxy": "redis-galaxy-pw-secret", "lobby": "redis-lobby-pw-secret"}
SHORT_INTERVALS = {**FAST_SETTINGS, **FAST_OBSERVATION_SETTINGS, "GALAXY_BEAT_LOCK_TIMEOUT_SECONDS": "4"}
SENDING = "Sending due task"
CONTAINER_GONE = {"container_id": "c", "event_type": "container_disappeared", "occurred_at_ms": "5", "details": "{}"}
BRIDGE_SINGLETON = "gamemaster.health_events_bridge"
PORT_AS_GAME_ID = "http://127.0.0.1:{game_id}"
"""Games named by free loopback ports, so each engine serves ``/healthz`` on its own (as the demo does)."""
VENV_BIN = Path(sys.executable).parent


@dataclass
class Started:
    process: DeployedProcess
    popen: subprocess.Popen[bytes]
    log: Path
    metrics_port: int
    env: dict[str, str]
    extra: dict[str, str] = field(default_factory=dict)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Deployment:
    layout: str
    pipeline: Pipeline
    log_dir: Path
    docker_host: str
    started: list[Started] = field(default_factory=list)

    def local_argv(self, process: DeployedProcess, flower_port: int) -> list[str]:
        program, *args = process.argv
        name = Path(program).name
        assert name in ("celery", "galaxy-tasks"), f"{process.name}: runs {program}, not the image's tools"
        if process.celery_command == "flower":  # on a free loopback port here
            args = [a for a in args if not a.startswith(("--port", "--address"))]
            args += [f"--port={flower_port}", "--address=127.0.0.1"]
        return [str(VENV_BIN / name), *args]

    def local_env(self, process: DeployedProcess, metrics_port: int, index: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GALAXY_", "PROMETHEUS_", "FLOWER_"))}
        env.pop("DOCKER_HOST", None)
        env.update(process.environment)
        env.pop("GALAXY_ENGINE_NETWORK", None)
        env.update(TEST_ENGINE_ENV)
        env["GALAXY_ENGINE_ENDPOINT_TEMPLATE"] = PORT_AS_GAME_ID  # each engine probed on a port of its own
        env.update(SHORT_INTERVALS)
        urls = {"GALAXY_REDIS_URL": self.pipeline.redis_url, "GALAXY_DATABASE_URL": self.pipeline.database_url}
        for variable, url in urls.items():  # as the layout gives it: a secret file, or the variable
            if f"{variable}_FILE" in env:
                secret = self.log_dir / f"secret-{index}-{variable.lower()}"
                secret.write_text(url + "\n")
                secret.chmod(0o600)
                env[f"{variable}_FILE"] = str(secret)
            else:
                env[variable] = url
        env.update(
            GALAXY_METRICS_DIR=str(self.log_dir / f"metrics-{index}"),
            GALAXY_METRICS_ADDRESS="127.0.0.1",
            GALAXY_METRICS_PORT=str(metrics_port),
        )
        if "GALAXY_HEALTH_DIR" in env:
            env["GALAXY_HEALTH_DIR"] = str(self.log_dir / f"health-{index}")
        if process.sees_docker:
            env["DOCKER_HOST"] = self.docker_host
        else:
            env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"  # no Docker, not even the default socket
        return env

    def start(self, process: DeployedProcess, copy: int = 0) -> Started:
        index = len(self.started)
        metrics_port, flower_port = free_loopback_port(), free_loopback_port()
        (self.log_dir / f"metrics-{index}").mkdir()
        log = self.log_dir / f"{index:02d}-{process.name.split()[-1]}-{copy}.log"
        env = self.local_env(process, metrics_port, index)
        with log.open("ab") as out:
            popen = subprocess.Popen(
                self.local_argv(process, flower_port),
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = Started(process, popen, log, metrics_port, env, {"flower_port": str(flower_port)})
        self.started.append(started)
        return started

    def by_command(self, command: str) -> list[Started]:
        return [s for s in self.started if s.process.celery_command == command]

    def stop_all(self) -> None:
        for started in self.started:
            if started.alive():
                started.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for started in self.started:
            try:
                started.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(started.popen.pid, signal.SIGKILL)
                started.popen.wait(timeout=10)


def layout_processes(layout: str) -> list[DeployedProcess]:
    return compose_processes() if layout == "compose" else systemd_processes()


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A Redis of the test with deploy/'s ACL file (the example, its passwords filled in)."""
    acl = (DEPLOY / "secrets" / "redis-users.acl.example").read_text()
    acl = acl.replace("CHANGE-ME-GALAXY", REDIS_PASSWORDS["galaxy"]).replace(
        "CHANGE-ME-LOBBY", REDIS_PASSWORDS["lobby"]
    )
    assert "CHANGE-ME" not in acl
    acl_file = tmp_path / "users.acl"
    acl_file.write_text(acl)
    server = PrivateRedis(
        data_dir=tmp_path / "redis-data",
        log_path=tmp_path / "redis-server.log",
        appendfsync="everysec",
        extra_args=("--aclfile", str(acl_file)),
        ping_user=("galaxy", REDIS_PASSWORDS["galaxy"]),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def user_url(server: PrivateRedis, user: str) -> str:
    return f"redis://{user}:{REDIS_PASSWORDS[user]}@127.0.0.1:{server.port}/0"


@pytest.fixture(params=["compose", "systemd"])
def deployment(
    request: pytest.FixtureRequest,
    pipeline: Pipeline,
    acl_redis: PrivateRedis,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> Iterator[Deployment]:
    docker_host: str = request.getfixturevalue("docker_host")
    database_url = make_url(fresh_database_url()).set(password=DATABASE_PASSWORD)
    fresh = dataclasses.replace(
        pipeline,
        redis_url=user_url(acl_redis, "galaxy"),
        broker_url="",
        database_url=database_url.render_as_string(hide_password=False),
    )
    log_dir = tmp_path / "deployment"
    log_dir.mkdir()
    running = Deployment(request.param, fresh, log_dir, docker_host)
    try:
        yield running
    finally:
        running.stop_all()
        for container in docker_client.containers.list(all=True, filters={"label": GAME_LABEL}):
            container.remove(force=True)
        for started in running.started:
            print(f"===== {started.log.name} (tail) =====\n{started.log_text()[-3000:]}")
        fresh.close()
        drop_database(fresh.database_url)


def start_layout(deployment: Deployment) -> None:
    processes = layout_processes(deployment.layout)
    (migrate,) = [p for p in processes if p.oneshot]
    ran = deployment.start(migrate)
    assert ran.popen.wait(timeout=120) == 0, ran.log_text()
    for process in processes:
        if process.oneshot:
            continue
        copies = 2 if process.celery_command == "beat" else process.replicas  # redbeat: active and standby
        for copy in range(copies):
            deployment.start(process, copy)
    for started in deployment.started[1:]:
        wait_started(started)


def wait_started(started: Started) -> None:
    if started.process.celery_command is None:  # galaxy-tasks metrics --cluster
        wait_until(
            lambda: http_status(f"http://127.0.0.1:{started.metrics_port}/metrics") == 200 or not started.alive(),
            timeout=60,
            what=f"{started.log.name} to serve",
        )
    else:
        marker = {"worker": " ready.", "beat": "beat: Starting", "flower": "Visit me at"}[
            str(started.process.celery_command)
        ]
        wait_until(
            lambda: marker in started.log_text() or not started.alive(), timeout=60, what=f"{started.log.name} to start"
        )
    assert started.alive(), started.log_text()[-3000:]


def cluster_sample(deployment: Deployment, name: str, labels: dict[str, str]) -> float | None:
    (endpoint,) = [s for s in deployment.started if s.process.argv[1:3] == ("metrics", "--cluster")]
    with urllib.request.urlopen(f"http://127.0.0.1:{endpoint.metrics_port}/metrics", timeout=10) as reply:
        body = reply.read().decode()
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def http_status(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def command_lines(deployment: Deployment) -> list[str]:
    lines = []
    for started in deployment.started:
        with contextlib.suppress(psutil.NoSuchProcess):
            parent = psutil.Process(started.popen.pid)
            for proc in [parent, *parent.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    lines.append(" ".join(proc.cmdline()))
    return lines


def check_redis_users(server: PrivateRedis, as_lobby: Pipeline) -> None:
    """The ACL as deployed: no anonymous access, the Lobby kept to its streams, Redis's healthcheck as declared."""
    anonymous = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.get(HEALTH_EVENTS_BRIDGE_KEYS.offset)
    anonymous.close()
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_lobby.r.xadd(HEALTH_EVENTS_STREAM, {"game_id": "forged", "event_type": "container_exited"})
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_lobby.r.get(HEALTH_EVENTS_BRIDGE_KEYS.offset)
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_lobby.r.llen("gamemaster.health_events")  # the broker's queues are not the Lobby's
    command = [str(part) for part in rendered_compose()["services"]["redis"]["healthcheck"]["test"][1:]]
    assert command[0] == "redis-cli"
    ran = subprocess.run(
        [command[0], "-p", str(server.port), *command[1:]], capture_output=True, text=True, timeout=30, check=False
    )
    assert (ran.returncode, ran.stdout.strip()) == (0, "PONG"), ran.stderr


def run_healthchecks(deployment: Deployment) -> int:
    """Each running process's declared healthcheck, in its environment (Flower's port made local); how many."""
    checked = 0
    for started in deployment.started:
        if started.process.healthcheck is None or not started.alive():
            continue
        command = [part.replace(":5555", f":{started.extra['flower_port']}") for part in started.process.healthcheck]
        program = {"galaxy-tasks": str(VENV_BIN / "galaxy-tasks"), "python": sys.executable}.get(command[0], command[0])
        ran = subprocess.run(
            [program, *command[1:]], env=started.env, capture_output=True, text=True, timeout=30, check=False
        )
        assert ran.returncode == 0, (started.process.name, ran.stderr)
        checked += 1
    return checked


def active_beat(deployment: Deployment) -> Started:
    sending = [b for b in deployment.by_command("beat") if SENDING in b.log_text() and b.alive()]
    assert len(sending) == 1, [b.log.name for b in sending]
    return sending[0]


def test_the_documented_layout_starts_stops_watches_and_fails_over(
    deployment: Deployment, acl_redis: PrivateRedis, docker_client: docker.DockerClient
) -> None:
    start_layout(deployment)
    pipeline = deployment.pipeline
    as_lobby = dataclasses.replace(pipeline, redis_url=user_url(acl_redis, "lobby"))  # the Lobby's own Redis user
    lobby = Lobby(as_lobby, docker_client)
    check_redis_users(acl_redis, as_lobby)

    # Nothing secret on a command line, Flower behind its password.
    (flower,) = deployment.by_command("flower")
    flower_auth = flower.process.environment["FLOWER_BASIC_AUTH"]
    secrets = {DATABASE_PASSWORD, flower_auth.split(":", 1)[1], *REDIS_PASSWORDS.values()}
    lines = command_lines(deployment)
    assert len(lines) >= len(deployment.started) - 1
    assert [line for line in lines if any(secret in line for secret in secrets)] == []
    flower_url = f"http://127.0.0.1:{flower.extra['flower_port']}"
    assert http_status(f"{flower_url}/workers") == 401
    assert http_status(f"{flower_url}/workers", auth=flower_auth) == 200

    # Every healthcheck the layout declares passes, run as the layout runs it.
    assert run_healthchecks(deployment) >= (4 if deployment.layout == "compose" else 0)

    # Two games started through the job stream, as the Lobby does.
    dying, flaky = str(free_loopback_port()), str(free_loopback_port())
    pipeline.add_games({dying: "running", flaky: "running"})
    lobby.start(dying)
    (started_1,) = lobby.wait_results(dying, 1, timeout=90)
    assert started_1["outcome"] == "success", started_1

    # A death: Docker's truth reaches the Game Master.
    (container_1,) = lobby.containers(dying)
    container_1.kill()
    wait_until(
        lambda: pipeline.rows([dying]).get(dying, ("",))[0] == "engine_unreachable",
        timeout=60,
        what="the death of the first game to reach the Game Master",
    )

    # watch, in a worker's environment (the Redis URL with its password from the secret file), hides it.
    watched = subprocess.run(
        [str(VENV_BIN / "galaxy-tasks"), "watch", "--from-start", "--max-entries", "1"],
        env=next(s for s in deployment.started if s.process.queues).env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert watched.returncode == 0, watched.stderr
    assert "galaxy:***@127.0.0.1" in watched.stdout
    assert not any(secret in watched.stdout + watched.stderr for secret in secrets)

    # A probe failure and its recovery (the engine's HTTP server stopped, then started again).
    lobby.start(flaky)
    (started_2,) = lobby.wait_results(flaky, 1, timeout=90)
    assert started_2["outcome"] == "success", started_2
    assert started_2["engine_endpoint"] == f"http://127.0.0.1:{flaky}"
    (container_2,) = lobby.containers(flaky)
    wait_until(lambda: http_status(f"http://127.0.0.1:{flaky}/healthz") == 200, timeout=30, what="the engine serving")
    container_2.exec_run(["killall", "httpd"])
    wait_until(
        lambda: pipeline.rows([flaky]).get(flaky, ("", ""))[:2] == ("running", "probe_failed"),
        timeout=60,
        what="probe_failed of the second game to reach the Game Master",
    )
    container_2.exec_run(["httpd", "-p", f"127.0.0.1:{flaky}", "-h", "/www"])
    wait_until(
        lambda: pipeline.rows([flaky]).get(flaky, ("", ""))[:2] == ("running", "healthy"),
        timeout=60,
        what="probe_recovered of the second game to bring it back to running / healthy",
    )

    # Beat failover: the scheduling beat dies; the standby schedules within the lock timeout.
    wait_until(lambda: any(SENDING in b.log_text() for b in deployment.by_command("beat")), timeout=30, what="beat")
    active = active_beat(deployment)
    (standby,) = [b for b in deployment.by_command("beat") if b is not active]
    os.killpg(active.popen.pid, signal.SIGKILL)
    active.popen.wait(timeout=10)
    wait_until(lambda: SENDING in standby.log_text(), timeout=30, what="the standby beat to take over")
    lobby.stop(flaky)
    stopped = lobby.wait_results(flaky, 2, timeout=90)[1]
    assert stopped["outcome"] == "success", stopped
    assert lobby.containers(flaky) == []
    as_lobby.close()

    # The node running the bridges dies: the cluster endpoint shows the lag growing, not a last value.
    health = {"stream": HEALTH_EVENTS_STREAM}
    assert cluster_sample(deployment, "galaxy_cluster_bridge_lag_entries", health) == 0
    (bridges,) = [s for s in deployment.started if s.process.queues and "galaxy.long_running" in s.process.queues]
    os.killpg(bridges.popen.pid, signal.SIGKILL)
    bridges.popen.wait(timeout=10)
    pipeline.xadd_health([{"game_id": dying, **CONTAINER_GONE}])
    first = cluster_sample(deployment, "galaxy_cluster_bridge_lag_seconds", health)
    time.sleep(1.5)
    assert cluster_sample(deployment, "galaxy_cluster_bridge_lag_entries", health) == 1
    later = cluster_sample(deployment, "galaxy_cluster_bridge_lag_seconds", health)
    assert first is not None
    assert later is not None
    assert later >= first + 1.0
    wait_until(
        lambda: cluster_sample(deployment, "galaxy_cluster_singleton_held", {"singleton": BRIDGE_SINGLETON}) == 0,
        timeout=30,
        what="the dead node's bridge lease to expire",
    )
    wait_started(deployment.start(bridges.process, copy=1))  # restarted, as compose and systemd do
    wait_until(
        lambda: cluster_sample(deployment, "galaxy_cluster_bridge_lag_entries", health) == 0,
        timeout=60,
        what="the restarted node's bridge to catch up",
    )
    assert cluster_sample(deployment, "galaxy_cluster_singleton_held", {"singleton": BRIDGE_SINGLETON}) == 1
