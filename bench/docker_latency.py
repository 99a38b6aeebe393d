"""Benchmark: time from a Docker event to the changed Game Master row (issue 3), p50/p99 over N trials.

    .venv/bin/python bench/docker_latency.py [--trials 30]

Starts a private dockerd (as the tests do), a fresh migrated database, the
bench Redis database flushed, and galaxy_tasks as real ``celery`` processes: a
pool worker, a long-running worker (Docker events listener and stream bridge)
and beat.  Each trial starts an engine container for a new game that exits
with code 3 after a second; the latency is the ``gamemaster.runtime_records``
``updated_at`` of the game (PostgreSQL's ``now()`` of the applying
transaction) minus the container's ``State.FinishedAt`` (Docker's clock: the
same machine).  The baseline, measured in the same run from the same events:
when a plain Docker SDK subscriber in this process received the ``die``
event — the floor any listener has to start from.  Prints its figures and
writes them to ``bench/results/docker_latency.json``.
"""

from __future__ import annotations

import argparse
import json
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
from sqlalchemy import Engine, text  # noqa: E402

from bench.docker_world import docker_world  # noqa: E402
from galaxy_tasks.adapters.docker.runtime import GAME_LABEL, docker_time_ms  # noqa: E402
from galaxy_tasks.demo.engine_image import ENGINE_IMAGE  # noqa: E402
from galaxy_tasks.testing.cluster import Cluster, wait_until  # noqa: E402

FAST = {
    "GALAXY_PROBE_INTERVAL_SECONDS": "30",
    "GALAXY_INSPECT_INTERVAL_SECONDS": "30",
    "GALAXY_RECONCILE_INTERVAL_SECONDS": "30",
}


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))]


class DieWatcher:
    """The baseline: a plain Docker SDK events subscriber noting when each ``die`` arrives."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.received_ms: dict[str, float] = {}
        self._stream = client.api.events(filters={"type": "container", "event": "die"}, decode=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self._stream:
                self.received_ms[str(event.get("id"))] = time.time() * 1000
        except Exception:  # noqa: BLE001 - the stream is closed at the end of the run
            return

    def close(self) -> None:
        self._stream.close()


def run_trial(
    client: docker.DockerClient, engine: Engine, watcher: DieWatcher, game: str
) -> tuple[float, float | None]:
    """One engine that exits 3 after a second: (Docker FinishedAt → GM row, FinishedAt → SDK subscriber) in ms."""
    container = client.containers.run(
        ENGINE_IMAGE, ["sh", "-c", "sleep 1; exit 3"], detach=True, network_mode="host", labels={GAME_LABEL: game}
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO rtmanager.runtime_records (game_id, status, current_container_id) "
                "VALUES (:g, 'running', :c)"
            ),
            {"g": game, "c": container.id},
        )
        conn.execute(
            text("INSERT INTO gamemaster.runtime_records (game_id, status, current_turn) VALUES (:g, 'running', 1)"),
            {"g": game},
        )

    def changed() -> bool:
        with engine.connect() as conn:
            status = conn.execute(
                text("SELECT status FROM gamemaster.runtime_records WHERE game_id = :g"), {"g": game}
            ).scalar_one()
        return str(status) == "engine_unreachable"

    wait_until(changed, timeout=60, what=f"{game}: the GM row to change")
    container.reload()
    finished_ms = docker_time_ms(container.attrs["State"]["FinishedAt"])
    with engine.connect() as conn:
        updated_ms = float(
            conn.execute(
                text("SELECT extract(epoch FROM updated_at) * 1000 FROM gamemaster.runtime_records WHERE game_id = :g"),
                {"g": game},
            ).scalar_one()
        )
    received = watcher.received_ms.get(str(container.id))
    container.remove(force=True)
    return updated_ms - finished_ms, None if received is None else received - finished_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()

    log_dir = Path(tempfile.mkdtemp(prefix="galaxy-bench-docker-"))
    pipeline_ms: list[float] = []
    floor_ms: list[float] = []
    with docker_world(args.redis_url) as world:
        env = world.cluster_env(log_dir / "metrics", **FAST)
        cluster = Cluster(env=env, log_dir=log_dir)
        watcher = DieWatcher(world.client)
        try:
            cluster.pool_worker("pool", concurrency=4)
            cluster.long_running_worker()
            cluster.beat()
            wait_until(
                lambda: (
                    world.r.exists("rtmanager:docker_events:lease")
                    and world.r.exists("gamemaster:stream_bridge:health_events:lease")
                ),
                timeout=60,
                what="the listener and the bridge to start",
            )
            for trial in range(args.trials):
                took, floor = run_trial(world.client, world.engine, watcher, f"lat-{trial}")
                pipeline_ms.append(took)
                if floor is not None:
                    floor_ms.append(floor)
                print(f"trial {trial + 1}/{args.trials}: {took:.1f} ms", flush=True)
        finally:
            watcher.close()
            cluster.stop_all()

    report(pipeline_ms, floor_ms)
    return 0


def report(pipeline_ms: list[float], floor_ms: list[float]) -> None:
    figures: dict[str, Any] = {
        "trials": len(pipeline_ms),
        "docker_die_to_gm_row_ms": {
            "p50": round(statistics.median(pipeline_ms), 1),
            "p99": round(percentile(pipeline_ms, 99), 1),
            "max": round(max(pipeline_ms), 1),
        },
        "baseline_docker_die_to_sdk_subscriber_ms": {
            "p50": round(statistics.median(floor_ms), 1) if floor_ms else None,
            "p99": round(percentile(floor_ms, 99), 1) if floor_ms else None,
        },
    }
    print(json.dumps(figures, indent=2))
    out = REPO / "bench" / "results" / "docker_latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**figures, "pipeline_ms": pipeline_ms, "floor_ms": floor_ms}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
