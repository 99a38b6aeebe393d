"""``galaxy-tasks run`` brings the whole system up, ``status`` shows it, Ctrl-C takes it all down."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import IO

import psutil
import pytest

from galaxy_tasks.config import Settings
from galaxy_tasks.demo.local import DEMO_ENGINE_ENV
from galaxy_tasks.queues import Queue
from galaxy_tasks.testing.cluster import REPO, spawn_in_repo, wait_until
from galaxy_tasks.testing.services import free_loopback_port
from tests.support.browser import rendered_page
from tests.support.pipeline import Pipeline, now_ms

pytestmark = pytest.mark.e2e

GALAXY_TASKS = str(Path(sys.executable).with_name("galaxy-tasks"))
PROBE_FAILED = {
    "game_id": "g1",
    "container_id": "c",
    "event_type": "probe_failed",
    "details": '{"consecutive_failures": 3, "last_error": "timeout"}',
}


def _status(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [GALAXY_TASKS, "status", "--json"], env=env, cwd=REPO, capture_output=True, text=True, timeout=30, check=True
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _interrupt(run: subprocess.Popen[bytes], log: IO[bytes]) -> int:
    """Ctrl-C, as an operator would; the exit status."""
    run.send_signal(signal.SIGINT)
    try:
        return run.wait(timeout=90)
    finally:
        log.close()


def _assert_stopped_cleanly(code: int, started: list[int], output: Path) -> None:
    assert code == 0, output.read_text(errors="replace")[-3000:]
    survivors = [pid for pid in started if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert survivors == [], f"processes left behind: {survivors}"


def test_run_starts_everything_status_shows_the_bridge_and_sigint_stops_every_process(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    metrics_port, flower_port = free_loopback_port(), free_loopback_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GALAXY_", "PROMETHEUS_"))}
    env.update(pipeline.env)
    env.pop("GALAXY_METRICS_DIR")  # `run` puts them under its run dir
    env.update(GALAXY_METRICS_PORT=str(metrics_port), GALAXY_SUPERVISOR_INTERVAL_SECONDS="1")
    log = (tmp_path / "run.log").open("wb")
    run = spawn_in_repo(
        [GALAXY_TASKS, "run", "--run-dir", str(tmp_path / "run"), "--flower-port", str(flower_port)], env, log
    )
    try:
        wait_until(
            lambda: _status(env)["long_running"]["gamemaster.health_events_bridge"]["holder"],  # type: ignore[index]
            timeout=90,
            what="the supervisor to start the bridge",
            interval=0.5,
        )
        pipeline.add_games({"g1": "running"})
        entry_ids = pipeline.xadd_health(
            [
                {
                    "game_id": "g1",
                    "container_id": "c",
                    "event_type": "container_oom",
                    "occurred_at_ms": "9",
                    "details": "{}",
                }
            ]
        )
        pipeline.wait_settled(entry_ids, {"g1": entry_ids[-1]})
        status = _status(env)
        bridge = status["bridges"]["runtime:health_events"]  # type: ignore[index]
        assert bridge["offset"] == entry_ids[-1]
        assert bridge["lag"] == 0
        assert status["games"] == [{"status": "engine_unreachable", "engine_health": "oom", "games": 1}]
        table = subprocess.run(
            [GALAXY_TASKS, "status"], env=env, cwd=REPO, capture_output=True, text=True, timeout=30, check=True
        ).stdout
        holder = status["long_running"]["gamemaster.health_events_bridge"]["holder"]  # type: ignore[index]
        assert str(holder) in table
        assert entry_ids[-1] in table

        def scraped() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
                body = response.read().decode()
            return "galaxy_gm_health_events_consumed_total 1.0" in body

        wait_until(scraped, timeout=20, what="the consumed counter on the metrics endpoint")
        with urllib.request.urlopen(f"http://127.0.0.1:{flower_port}/", timeout=10) as response:
            assert response.status == 200

        # A real browser (headless chromium) sees the workers and the GM task by their names.
        def both_workers_listed() -> bool:
            page = rendered_page(f"http://127.0.0.1:{flower_port}/workers")
            return "pool@" in page and "long-running@" in page

        def every_queue_listed() -> bool:
            page = rendered_page(f"http://127.0.0.1:{flower_port}/broker")
            return all(queue.value in page for queue in Queue)

        wait_until(both_workers_listed, timeout=60, what="Flower's workers page to list both workers")
        wait_until(every_queue_listed, timeout=60, what="Flower's broker page to list every queue")

        def task_shown() -> bool:
            # Another entry each time: a task that ran before Flower followed the events is not shown.
            more = pipeline.xadd_health([{**PROBE_FAILED, "occurred_at_ms": str(now_ms())}])
            pipeline.wait_settled(more, {"g1": more[-1]})
            return "gamemaster.apply_health_event" in rendered_page(f"http://127.0.0.1:{flower_port}/tasks")

        wait_until(task_shown, timeout=90, what="Flower's tasks page to show gamemaster.apply_health_event")
        started = [run.pid, *(p.pid for p in psutil.Process(run.pid).children(recursive=True))]
        assert len(started) >= 5, "run, two workers (with pool children), beat and Flower"
    finally:
        code = _interrupt(run, log)
    _assert_stopped_cleanly(code, started, tmp_path / "run.log")


def test_the_readme_run_command_starts_docker_and_demo_games_shows_a_killed_engine_and_sigint_stops_it_all(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """The README's run command, on a machine without a Docker Engine: it starts its own, and the demo on it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GALAXY_", "PROMETHEUS_", "DOCKER_"))}
    env.update(pipeline.env)
    env.pop("GALAXY_METRICS_DIR")
    env.update(GALAXY_METRICS_PORT=str(free_loopback_port()), GALAXY_SUPERVISOR_INTERVAL_SECONDS="1")
    output = tmp_path / "run.out"
    log = output.open("wb")
    run = spawn_in_repo(
        ["bash", "scripts/run-local.sh", "--demo", "2", "--watch", "--no-flower", "--run-dir", str(tmp_path / "run")],
        env,
        log,
    )
    started: list[int] = []
    try:
        wait_until(lambda: "Demo games" in output.read_text(errors="replace"), timeout=120, what="the demo hints")
        games = re.search(r"Demo games (\d+), (\d+) are starting", output.read_text()).groups()  # type: ignore[union-attr]
        wait_until(
            lambda: all(("running", "healthy", "1") in pipeline.lobby_snapshots([g]).get(g, []) for g in games),
            timeout=60,
            what="both demo games to report healthy on gm:lobby_events",
        )
        host = re.search(r"docker -H (\S+) kill", output.read_text())
        started = [run.pid, *(p.pid for p in psutil.Process(run.pid).children(recursive=True))]
        hints = [line.strip() for line in output.read_text().splitlines() if line.startswith("  docker")]
        kill = next(h for h in hints if h.endswith(f"kill galaxy-game-{games[0]}"))
        crash = next(h for h in hints if h.endswith(f"exec galaxy-game-{games[1]} kill -USR1 1"))
        for hint in (kill, crash):  # as printed: the operator's copy and paste
            subprocess.run(shlex.split(hint), check=True, capture_output=True, timeout=30)
        wait_until(
            lambda: pipeline.rows([games[0]]).get(games[0], ("",))[:2] == ("engine_unreachable", "exited"),
            timeout=60,
            what="the killed demo game's GM record to turn engine_unreachable / exited",
        )
        wait_until(
            lambda: f"game {games[0]}" in output.read_text() and "container_exited" in output.read_text(),
            timeout=10,
            what="the watch view to show the exit",
        )
        recovery = Settings.from_env({**DEMO_ENGINE_ENV}).convergence_bounds().recovery_seconds
        wait_until(
            lambda: (
                "probe_recovered" in pipeline.health_kinds(games[1])
                and pipeline.rows([games[1]])[games[1]][:2] == ("running", "healthy")
            ),
            timeout=recovery + 20,
            what="the crashed demo game to be back at running / healthy by itself",
        )
        assert "container_exited" in pipeline.health_kinds(games[1])
        assert pipeline.rows([games[0]])[games[0]][:2] == ("engine_unreachable", "exited"), "the kill stays"
        assert "inspect_unhealthy" not in pipeline.health_kinds(games[0]), "no inspect noise after a death"
    finally:
        code = _interrupt(run, log)
    _assert_stopped_cleanly(code, started, output)
    if host:
        assert not Path(host.group(1).removeprefix("unix://")).exists(), "the private dockerd's folder is left"
