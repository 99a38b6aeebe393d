"""The one-command local run's Docker Engine and demo games.

``galaxy-tasks run`` uses the Docker Engine at ``DOCKER_HOST`` (or the Docker
SDK's default socket) when one answers; otherwise it starts a private dockerd
of its own (images kept in ``<run dir>/docker``) and stops it on the way out.
With ``--demo N`` it builds the busybox engine image, registers N games with
the Game Master as ``running`` (what the Lobby would do) and asks the Runtime
Manager to start their engines through ``runtime:start_jobs``, exactly as the
Lobby does.  Demo engines use host networking and listen on loopback; a demo
game is named after its engine's port (``18081`` …), which the endpoint
template ``http://127.0.0.1:{game_id}`` turns into its endpoint.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping, MutableMapping
from pathlib import Path

import docker
import docker.errors
import redis
from sqlalchemy import create_engine, text

from galaxy_tasks.contract import START_JOBS_BRIDGE_KEYS, START_JOBS_STREAM
from galaxy_tasks.demo.dockerd import PrivateDockerd
from galaxy_tasks.demo.engine_image import ENGINE_IMAGE, build_engine_image
from galaxy_tasks.domain.errors import LocalRunFailed
from galaxy_tasks.domain.gamemaster.statuses import RuntimeStatus
from galaxy_tasks.logs import get_logger

log = get_logger(__name__)

DEMO_ENGINE_ENV: Mapping[str, str] = {
    "GALAXY_ENGINE_NETWORK": "host",
    "GALAXY_ENGINE_ENDPOINT_TEMPLATE": "http://127.0.0.1:{game_id}",
    "GALAXY_ENGINE_IMAGE_PULL": "never",
    "GALAXY_ENGINE_MEMORY_LIMIT": "64m",
    "GALAXY_ENGINE_CPUS": "0.25",
    "GALAXY_PROBE_STARTUP_GRACE_SECONDS": "2",
}
"""Engine settings of the demo, applied where the environment does not set them already."""

FIRST_DEMO_PORT = 18081


def docker_answers(host: str) -> bool:
    try:
        client = docker.DockerClient(base_url=host, timeout=3) if host else docker.from_env(timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except docker.errors.DockerException:
        return False
    return True


def ensure_docker(run_dir: Path, environ: MutableMapping[str, str]) -> PrivateDockerd | None:
    """Leave a reachable Docker Engine alone; otherwise start ours and point ``DOCKER_HOST`` at it.

    Returns the daemon it started (the caller stops it), or ``None``.
    """
    host = environ.get("DOCKER_HOST", "")
    if docker_answers(host):
        log.info("docker_engine_found", docker_host=host or "the default socket")
        return None
    if host:
        raise LocalRunFailed(f"no Docker Engine answers at DOCKER_HOST={host}: start it, or unset DOCKER_HOST")
    daemon = PrivateDockerd(data_root=run_dir.resolve() / "docker", prefix="gtr-")
    daemon.start()
    environ["DOCKER_HOST"] = daemon.host
    log.info("private_dockerd_started", docker_host=daemon.host, pid=daemon.pid, data_root=str(daemon.data_root))
    return daemon


def ensure_engine_image(host: str) -> None:
    client = docker.DockerClient(base_url=host, timeout=60) if host else docker.from_env(timeout=60)
    try:
        try:
            client.images.get(ENGINE_IMAGE)
        except docker.errors.ImageNotFound:
            build_engine_image(client)
            log.info("engine_image_built", image=ENGINE_IMAGE)
    finally:
        client.close()


def demo_game_ids(count: int, first_port: int = FIRST_DEMO_PORT) -> list[str]:
    """``count`` loopback ports free right now, from ``first_port`` up: the demo games' ids."""
    games: list[str] = []
    port = first_port
    while len(games) < count and port < 65535:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                games.append(str(port))
            except OSError:
                pass
        port += 1
    return games


def start_demo_games(
    games: list[str], *, redis_url: str, database_url: str, image: str = ENGINE_IMAGE, timeout: float = 90
) -> None:
    """Register the games with the Game Master as ``running`` and send their start jobs (as the Lobby would)."""
    r = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=5)
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            for game in games:
                conn.execute(
                    text(
                        "INSERT INTO gamemaster.runtime_records (game_id, status, current_turn) "
                        "VALUES (:g, :running, 1) "
                        "ON CONFLICT (game_id) DO UPDATE SET status = :running, updated_at = now()"
                    ),
                    {"g": game, "running": RuntimeStatus.RUNNING.value},
                )
        deadline = time.monotonic() + timeout
        while not r.exists(START_JOBS_BRIDGE_KEYS.lease):
            if time.monotonic() > deadline:
                raise LocalRunFailed("the start-jobs bridge did not start; see the long-running worker's log")
            time.sleep(0.5)
        for game in games:
            r.xadd(START_JOBS_STREAM, {"game_id": game, "image_ref": image})
        log.info("demo_games_requested", games=games)
    finally:
        r.close()
        engine.dispose()


def demo_hints(games: list[str], docker_host: str) -> str:
    """What to try on the demo games, each with what the system then shows (README "What you see")."""
    dock = f"docker -H {docker_host}" if docker_host else "docker"
    first, second, third = games[0], games[1 % len(games)], games[2 % len(games)]
    return "\n".join(
        [
            "",
            f"Demo games {', '.join(games)} are starting (engines on http://127.0.0.1:<game>/healthz). Try:",
            f"  {dock} kill galaxy-game-{first}",
            "      -> RTM observed container_exited exit_code=137; GM status=engine_unreachable health=exited,",
            "         and it stays so: Docker does not restart a killed container (a start job brings the game back)",
            f"  {dock} exec galaxy-game-{second} kill -USR1 1",
            "      -> the engine crashes (exit 2) and Docker's restart policy (on-failure:3) restarts it:",
            "         container_exited, GM status=engine_unreachable; once an inspect and a probe see it serve,",
            "         probe_recovered, GM status=running health=healthy",
            f"  {dock} exec galaxy-game-{third} killall httpd",
            "      -> after 3 failed probes: probe_failed; GM health=probe_failed",
            f"  {dock} exec -d galaxy-game-{third} httpd -p 127.0.0.1:{third} -h /www",
            "      -> probe_recovered; GM status=running health=healthy",
            "  galaxy-tasks status     (another terminal: streams, bridges, leases, games, orphans)",
            "",
        ]
    )


def apply_demo_engine_env(environ: MutableMapping[str, str]) -> None:
    for name, value in DEMO_ENGINE_ENV.items():
        environ.setdefault(name, value)


__all__ = [
    "DEMO_ENGINE_ENV",
    "apply_demo_engine_env",
    "demo_game_ids",
    "demo_hints",
    "ensure_docker",
    "ensure_engine_image",
    "start_demo_games",
]
