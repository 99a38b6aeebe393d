"""``galaxy-tasks run``: the whole system on one machine, in the foreground.

Starts the event-pool worker, the long-running worker (thread pool, so its
tasks never take a pool slot and see the worker's shutdown), beat, Flower and
a metrics endpoint — and, when no Docker Engine answers, a private dockerd
(``galaxy_tasks.demo.local``).  ``--demo N`` starts N demo games through the
job stream; ``--watch`` sends the processes' logs to files and shows the
health changes instead (``galaxy-tasks watch``).  A child that exits is restarted with exponential backoff,
as a process supervisor would in production; Ctrl-C (or SIGTERM) warm-stops
every child it started, and kills by pid whatever has not stopped after a
grace period.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from galaxy_tasks.config import get_settings
from galaxy_tasks.demo.dockerd import PrivateDockerd
from galaxy_tasks.domain.errors import LocalRunFailed
from galaxy_tasks.logs import get_logger
from galaxy_tasks.processes import beat_args, celery_command, long_running_worker_args, pool_worker_args

log = get_logger(__name__)

STOP_GRACE_SECONDS = 20.0
RESTART_BACKOFF_MAX_SECONDS = 30.0


def _open_log(run_dir: Path, name: str, to_files: bool) -> int | None:
    if not to_files:
        return None
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return os.open(logs / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def _spawn(command: list[str], run_dir: Path, name: str, to_files: bool) -> subprocess.Popen[bytes]:
    fd = _open_log(run_dir, name, to_files)
    try:
        return subprocess.Popen(command, start_new_session=True, stdout=fd, stderr=fd)
    finally:
        if fd is not None:
            os.close(fd)


def child_commands(args: argparse.Namespace, run_dir: Path) -> dict[str, list[str]]:
    commands: dict[str, list[str]] = {}
    for number in range(1, args.pool_workers + 1):
        suffix = "" if number == 1 else str(number)
        commands[f"pool-worker{suffix}"] = celery_command(
            *pool_worker_args(f"pool{suffix}", concurrency=args.pool_concurrency, pool=args.pool, extra=["-E"])
        )
    commands |= {
        "long-running-worker": celery_command(*long_running_worker_args("long-running", extra=["-E"])),
        "beat": celery_command(*beat_args(run_dir / "celerybeat-schedule")),
    }
    if not args.no_flower:
        commands["flower"] = celery_command("flower", f"--port={args.flower_port}", "--address=127.0.0.1")
    return commands


def run_command(args: argparse.Namespace) -> int:
    from galaxy_tasks.config import reset_settings_cache
    from galaxy_tasks.demo import local
    from galaxy_tasks.metrics import reset_metrics_dir

    run_dir = Path(args.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if args.demo:
        local.apply_demo_engine_env(os.environ)
        reset_settings_cache()
    daemon = _docker_for_the_run(run_dir, required=args.demo > 0)
    try:
        return _run(args, run_dir, reset_metrics_dir)
    finally:
        if daemon is not None:
            log.info("stopping_private_dockerd", pid=daemon.pid)
            daemon.close()


def _docker_for_the_run(run_dir: Path, *, required: bool) -> PrivateDockerd | None:
    from galaxy_tasks.demo import local

    try:
        daemon = local.ensure_docker(run_dir, os.environ)
        if required:
            local.ensure_engine_image(os.environ.get("DOCKER_HOST", ""))
        return daemon
    except LocalRunFailed as exc:
        if required:
            raise
        log.warning("no_docker_engine", error=str(exc), hint="health sweeps and start/stop jobs fail until one answers")
        return None


def _run(args: argparse.Namespace, run_dir: Path, reset_metrics_dir: Callable[[str], None]) -> int:
    settings = get_settings()
    metrics_dir = settings.metrics_dir or str(run_dir / "metrics")
    reset_metrics_dir(metrics_dir)
    os.environ["GALAXY_METRICS_DIR"] = metrics_dir
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    if not args.no_migrate:
        from galaxy_tasks.cli.migrate import migrate_command

        migrate_command("head")

    from galaxy_tasks.cli.metrics_server import serve_metrics

    serve_metrics(settings.metrics_port)
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    to_files = bool(args.watch)
    commands = child_commands(args, run_dir)
    for name, command in commands.items():
        children[name] = _spawn(command, run_dir, name, to_files)
        log.info("started", process=name, pid=children[name].pid)
    flower = "" if args.no_flower else f", Flower on http://127.0.0.1:{args.flower_port}"
    logs = f"; logs in {run_dir / 'logs'}" if to_files else ""
    print(
        f"galaxy_tasks is running (metrics on http://127.0.0.1:{settings.metrics_port}/metrics{flower}{logs}); "
        "Ctrl-C stops it. `galaxy-tasks status` shows the pipeline.",
        flush=True,
    )
    if args.watch:
        threading.Thread(target=_watch, args=(stopping,), name="watch", daemon=True).start()
    demo_games: list[str] = []
    if args.demo:
        demo_games = _start_demo(args.demo, settings.redis_url, settings.database_url)
    restarts: dict[str, tuple[int, float]] = {}  # name -> (consecutive restarts, not before)
    while not stopping.is_set():
        for name, child in list(children.items()):
            if child.poll() is None:
                continue
            count, not_before = restarts.get(name, (0, 0.0))
            if not_before == 0.0:
                delay = min(RESTART_BACKOFF_MAX_SECONDS, 2.0**count)
                log.error("child_exited", process=name, pid=child.pid, returncode=child.returncode, restart_in_s=delay)
                restarts[name] = (count, time.monotonic() + delay)
            elif time.monotonic() >= not_before:
                children[name] = _spawn(commands[name], run_dir, name, to_files)
                restarts[name] = (count + 1, 0.0)
                log.warning("restarted", process=name, pid=children[name].pid, restarts=count + 1)
        stopping.wait(0.5)
    stop_children(children)
    if demo_games:
        _remove_demo_engines(demo_games)
    return 0


def _start_demo(count: int, redis_url: str, database_url: str) -> list[str]:
    from galaxy_tasks.demo import local

    games = local.demo_game_ids(count)
    try:
        local.start_demo_games(games, redis_url=redis_url, database_url=database_url)
    except LocalRunFailed as exc:
        log.error("demo_not_started", error=str(exc))
        return games
    print(local.demo_hints(games, os.environ.get("DOCKER_HOST", "")), flush=True)
    return games


def _watch(stopping: threading.Event) -> None:
    from galaxy_tasks.cli.watch import watch_command
    from galaxy_tasks.domain.errors import TransientError

    while not stopping.is_set():
        try:
            watch_command(should_stop=stopping.is_set)
        except TransientError as exc:
            log.warning("watch_interrupted", error=str(exc))
            stopping.wait(2)


def _remove_demo_engines(games: list[str]) -> None:
    """The demo's engine containers were started for this run: they go with it."""
    import docker
    import docker.errors

    from galaxy_tasks.domain.rtmanager.jobs import container_name

    try:
        client = docker.from_env(timeout=30)
        for game in games:
            try:
                client.api.remove_container(container_name(game), force=True)
            except docker.errors.NotFound:
                continue
        client.close()
    except docker.errors.DockerException as exc:
        log.warning("demo_engines_not_removed", error=str(exc))


def stop_children(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """Warm-stop every child we started, then kill by pid what outlives the grace period."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, child in children.items():
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.warning("killing", process=name, pid=child.pid)
            os.killpg(child.pid, signal.SIGKILL)  # its own process group: it and its pool children
            child.wait()
    log.info("stopped", processes=len(children))
