"""Benchmark: how fast the health view converges to Docker's truth (issue 10), p50/p99, default settings.

    .venv/bin/python bench/convergence.py [--trials 20]

Starts a private dockerd, a fresh migrated database, the bench Redis database
flushed, and galaxy_tasks as real ``celery`` processes (a pool worker, the
long-running worker, beat) with the **default** intervals.  Two figures, each
over ``--trials`` games whose accidents are spread over a couple of intervals
(so they meet the periodic work at every phase):

* **missed death**: the listener is frozen — the bench holds its lease, so
  no listener runs and every Docker event is missed — and each engine exits
  with code 3 at its own time.  Latency: the game's ``gamemaster.runtime_records``
  ``updated_at`` (``engine_unreachable``) minus the container's ``FinishedAt``.
  The baseline, in the same run: the same deaths with the listener running
  (the fast path).
* **restart-policy restart**: each engine crashes once (exit 2) under
  ``on-failure:5``; Docker restarts it, the listener publishes the crash, and
  the game must come back by itself.  Latency: the Game Master row back at
  ``running`` minus the crash's ``FinishedAt``.

Both are compared with the bounds ``Settings().convergence_bounds()`` gives
(the formulas of docs/architecture.md).  Figures go to ``bench/results/convergence.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import docker  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from bench.docker_latency import percentile  # noqa: E402
from bench.docker_world import docker_world  # noqa: E402
from galaxy_tasks.adapters.docker.runtime import GAME_LABEL, docker_time_ms  # noqa: E402
from galaxy_tasks.config import Settings  # noqa: E402
from galaxy_tasks.contract import DOCKER_EVENTS_LEASE_KEY  # noqa: E402
from galaxy_tasks.demo.engine_image import ENGINE_IMAGE  # noqa: E402
from galaxy_tasks.testing.cluster import Cluster, wait_until  # noqa: E402
from galaxy_tasks.testing.services import free_loopback_port  # noqa: E402

CRASHING_ENGINE = [
    "sh",
    "-c",
    'httpd -p "127.0.0.1:$ENGINE_PORT" -h /www; '
    "while [ ! -e /tmp/crash ]; do sleep 0.2; done; rm -f /tmp/crash; exit 2",
]


class DefaultsCluster(Cluster):
    """The tests' cluster of celery processes, without the tests' lowered settings: what a newcomer runs."""

    def _environ(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("GALAXY_", "PROMETHEUS_"))}
        environ.update(self.env)
        return environ


class FrozenListener:
    """Holds the Docker events listener's lease, so no listener runs: every event is missed."""

    def __init__(self, r: redis.Redis) -> None:
        self._r = r
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def __enter__(self) -> FrozenListener:
        wait_until(lambda: self._r.exists(DOCKER_EVENTS_LEASE_KEY), timeout=60, what="the first listener")
        self._r.set(DOCKER_EVENTS_LEASE_KEY, "bench-frozen:0:0", px=5_000)  # the running one loses its lease
        self._thread.start()
        return self

    def _hold(self) -> None:
        while not self._stop.wait(1.0):
            self._r.set(DOCKER_EVENTS_LEASE_KEY, "bench-frozen:0:0", px=5_000)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._r.delete(DOCKER_EVENTS_LEASE_KEY)


def _register(engine: Engine, game: str, container_id: str, endpoint: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO rtmanager.runtime_records (game_id, status, current_container_id, engine_endpoint) "
                "VALUES (:g, 'running', :c, :e)"
            ),
            {"g": game, "c": container_id, "e": endpoint},
        )
        conn.execute(
            text("INSERT INTO gamemaster.runtime_records (game_id, status, current_turn) VALUES (:g, 'running', 1)"),
            {"g": game},
        )


def _gm(engine: Engine, game: str) -> tuple[str, float]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT status, extract(epoch FROM updated_at) * 1000 AS ms FROM gamemaster.runtime_records "
                "WHERE game_id = :g"
            ),
            {"g": game},
        ).one()
    return str(row.status), float(row.ms)


def deaths(client: docker.DockerClient, engine: Engine, trials: int, spread_s: float, tag: str) -> list[float]:
    """``trials`` engines exiting 3 at times spread over ``spread_s``: FinishedAt → GM row, in ms."""
    games = []
    for n in range(trials):
        game = f"{tag}-{n}"
        delay = 2 + random.uniform(0, spread_s)
        container = client.containers.run(
            ENGINE_IMAGE,
            ["sh", "-c", f"sleep {delay:.2f}; exit 3"],
            detach=True,
            network_mode="host",
            labels={GAME_LABEL: game},
        )
        _register(engine, game, str(container.id), "")
        games.append((game, container))
    took: list[float] = []
    for game, container in games:

        def dead(g: str = game) -> bool:
            return _gm(engine, g)[0] == "engine_unreachable"

        wait_until(dead, timeout=spread_s + 120, what=game)
        container.reload()
        took.append(_gm(engine, game)[1] - docker_time_ms(container.attrs["State"]["FinishedAt"]))
        container.remove(force=True)
    return took


def restarts(client: docker.DockerClient, engine: Engine, trials: int, spread_s: float, grace_s: float) -> list[float]:
    """``trials`` engines crashing once under ``on-failure:5``: crash FinishedAt → GM row back at running, in ms."""
    games = []
    for n in range(trials):
        game, port = f"restart-{n}", free_loopback_port()
        container = client.containers.run(
            ENGINE_IMAGE,
            CRASHING_ENGINE,
            detach=True,
            network_mode="host",
            labels={GAME_LABEL: game},
            environment={"ENGINE_PORT": str(port)},
            restart_policy={"Name": "on-failure", "MaximumRetryCount": 5},
        )
        _register(engine, game, str(container.id), f"http://127.0.0.1:{port}")
        games.append((game, container))
    time.sleep(grace_s + 5)  # past the start-up grace: the engines are probed and healthy
    schedule = sorted((random.uniform(0, spread_s), game, container) for game, container in games)
    started = time.monotonic()
    for at, _, container in schedule:
        time.sleep(max(0.0, at - (time.monotonic() - started)))
        container.exec_run(["touch", "/tmp/crash"])
    took: list[float] = []
    for _, game, container in schedule:

        def back(g: str = game, c: Any = container) -> bool:
            c.reload()
            return int(c.attrs["RestartCount"]) >= 1 and _gm(engine, g)[0] == "running" and _down_seen(engine, g)

        wait_until(back, timeout=spread_s + 180, what=f"{game} back at running", interval=0.2)
        took.append(_gm(engine, game)[1] - docker_time_ms(container.attrs["State"]["FinishedAt"]))
        container.remove(force=True)
    return took


def _down_seen(engine: Engine, game: str) -> bool:
    """The crash reached the Game Master (the row changed since it was registered)."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text("SELECT engine_health = 'healthy' FROM gamemaster.runtime_records WHERE game_id = :g"),
                {"g": game},
            ).scalar_one()
        )


def stats(values_ms: list[float]) -> dict[str, float]:
    return {
        "p50_s": round(statistics.median(values_ms) / 1000, 2),
        "p99_s": round(percentile(values_ms, 99) / 1000, 2),
        "max_s": round(max(values_ms) / 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    defaults = Settings()
    bounds = defaults.convergence_bounds()
    log_dir = Path(tempfile.mkdtemp(prefix="galaxy-bench-convergence-"))
    with docker_world(args.redis_url) as world:
        cluster = DefaultsCluster(env=world.cluster_env(log_dir / "metrics"), log_dir=log_dir)
        try:
            cluster.pool_worker("pool", concurrency=4)
            cluster.long_running_worker()
            cluster.beat()
            wait_until(lambda: world.r.exists(DOCKER_EVENTS_LEASE_KEY), timeout=60, what="the listener")
            spread = 2 * defaults.reconcile_interval_seconds
            print(f"deaths seen by the listener ({args.trials}) ...", flush=True)
            seen = deaths(world.client, world.engine, args.trials, spread, "seen")
            print(f"deaths missed by a frozen listener ({args.trials}) ...", flush=True)
            with FrozenListener(world.r):
                missed = deaths(world.client, world.engine, args.trials, spread, "missed")
            wait_until(lambda: world.r.exists(DOCKER_EVENTS_LEASE_KEY), timeout=60, what="the listener again")
            print(f"restart-policy restarts ({args.trials}) ...", flush=True)
            restarted = restarts(world.client, world.engine, args.trials, spread, defaults.probe_startup_grace_seconds)
        finally:
            cluster.stop_all()
    figures: dict[str, Any] = {
        "trials": args.trials,
        "settings": "defaults",
        "missed_death_to_gm_row": {**stats(missed), "bound_s": bounds.missed_death_seconds},
        "baseline_seen_death_to_gm_row": stats(seen),
        "restart_to_gm_running": {**stats(restarted), "bound_s": bounds.recovery_seconds},
    }
    figures["missed_death_within_bound"] = figures["missed_death_to_gm_row"]["max_s"] <= bounds.missed_death_seconds
    figures["restart_within_bound"] = figures["restart_to_gm_running"]["max_s"] <= bounds.recovery_seconds
    print(json.dumps(figures, indent=2))
    out = REPO / "bench" / "results" / "convergence.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**figures, "missed_ms": missed, "seen_ms": seen, "restart_ms": restarted}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
