"""``galaxy-tasks run``: the whole system on one machine, in the foreground.

Starts the event-pool worker, the long-running worker (thread pool, so its
tasks never take a pool slot and see the worker's shutdown), beat, Flower and
a metrics endpoint.  A child that exits is restarted with exponential backoff,
as a process supervisor would in production; Ctrl-C (or SIGTERM) warm-stops
every child it started, and kills by pid whatever has not stopped after a
grace period.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from pathlib import Path
from types import FrameType

from galaxy_tasks.config import get_settings
from galaxy_tasks.logs import get_logger
from galaxy_tasks.processes import beat_args, celery_command, long_running_worker_args, pool_worker_args

log = get_logger(__name__)

STOP_GRACE_SECONDS = 20.0
RESTART_BACKOFF_MAX_SECONDS = 30.0


def child_commands(args: argparse.Namespace, run_dir: Path) -> dict[str, list[str]]:
    commands = {
        "pool-worker": celery_command(*pool_worker_args("pool", concurrency=args.pool_concurrency, extra=["-E"])),
        "long-running-worker": celery_command(*long_running_worker_args("long-running", extra=["-E"])),
        "beat": celery_command(*beat_args(run_dir / "celerybeat-schedule")),
    }
    if not args.no_flower:
        commands["flower"] = celery_command("flower", f"--port={args.flower_port}", "--address=127.0.0.1")
    return commands


def run_command(args: argparse.Namespace) -> int:
    from galaxy_tasks.metrics import reset_metrics_dir

    settings = get_settings()
    run_dir = Path(args.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
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
    stopping = False

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    commands = child_commands(args, run_dir)
    for name, command in commands.items():
        children[name] = subprocess.Popen(command, start_new_session=True)
        log.info("started", process=name, pid=children[name].pid)
    flower = "" if args.no_flower else f", Flower on http://127.0.0.1:{args.flower_port}"
    print(
        f"galaxy_tasks is running (metrics on http://127.0.0.1:{settings.metrics_port}/metrics{flower}); "
        "Ctrl-C stops it. `galaxy-tasks status` shows the pipeline.",
        flush=True,
    )
    restarts: dict[str, tuple[int, float]] = {}  # name -> (consecutive restarts, not before)
    while not stopping:
        for name, child in list(children.items()):
            if child.poll() is None:
                continue
            count, not_before = restarts.get(name, (0, 0.0))
            if not_before == 0.0:
                delay = min(RESTART_BACKOFF_MAX_SECONDS, 2.0**count)
                log.error("child_exited", process=name, pid=child.pid, returncode=child.returncode, restart_in_s=delay)
                restarts[name] = (count, time.monotonic() + delay)
            elif time.monotonic() >= not_before:
                children[name] = subprocess.Popen(commands[name], start_new_session=True)
                restarts[name] = (count + 1, 0.0)
                log.warning("restarted", process=name, pid=children[name].pid, restarts=count + 1)
        time.sleep(0.5)
    stop_children(children)
    return 0


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
