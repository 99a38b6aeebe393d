"""Benchmark: one inspect sweep over N running containers, beside seed ``003``'s loop (issue 3).

    .venv/bin/python bench/inspect_sweep.py [--containers 200] [--sweeps 9]

Starts a private dockerd (as the tests do), a fresh migrated database and the
bench Redis database flushed, then N engine containers labelled as games, each
with its ``rtmanager.runtime_records`` row ``running``.  Two ways to look at
them, measured alternately in the same run so both see the same machine:

* **galaxy_tasks**: ``plan_inspect_sweep`` (one filtered list call, the shared
  baselines from Redis) followed by ``inspect_container`` for every container
  the list could not vouch for — run inline here, where the deployed sweep
  would send them as tasks; the Docker calls are the same.
* **seed loop**: a port of seed ``003``'s tick — list the running records, then
  one ``inspect`` per container, sequentially, baselines in memory.

Both first run once to take their baselines (reported as the first sweep),
then ``--sweeps`` times with every container healthy.  Per sweep: wall time,
CPU seconds (this process; dockerd with its containerd; Redis) and Docker API
calls (HTTP requests the Docker SDK sent).  Prints medians and the ratios to
the issue's target — at most a tenth of the loop's Docker API calls and less
CPU — and writes them to ``bench/results/inspect_sweep.json``.  Reports; exit
status 0 whenever the run completed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import docker  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.docker_world import docker_world  # noqa: E402
from galaxy_tasks.adapters.docker.runtime import GAME_LABEL, DockerRuntime  # noqa: E402
from galaxy_tasks.adapters.postgres.rtm_records import PostgresRuntimeRecords  # noqa: E402
from galaxy_tasks.adapters.redis.inspect_baselines import RedisInspectBaselines  # noqa: E402
from galaxy_tasks.demo.engine_image import ENGINE_IMAGE  # noqa: E402
from galaxy_tasks.ports.rtmanager import RunningRecords  # noqa: E402
from galaxy_tasks.service.health_publisher import HealthPublisher  # noqa: E402
from galaxy_tasks.service.inspect_sweep import inspect_container, plan_inspect_sweep  # noqa: E402
from galaxy_tasks.testing.store import FakeHealthStream, FakeRuntimeStore  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ApiCallCounter:
    """Counts the HTTP requests a Docker SDK client sends (a ``requests`` response hook)."""

    def __init__(self, runtime: DockerRuntime) -> None:
        self.calls = 0
        runtime.client.api.hooks["response"].append(self._count)

    def _count(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return response


class SeedInspectLoop:
    """Seed ``003``'s tick: every running record inspected, one call each, baselines in this process."""

    def __init__(self, records: RunningRecords, runtime: DockerRuntime) -> None:
        self._records = records
        self._runtime = runtime
        self._restart_counts: dict[str, int] = {}
        self.unhealthy = 0

    def tick(self) -> None:
        running = self._records.running()
        games = {r.game_id for r in running}
        for game in [g for g in self._restart_counts if g not in games]:
            del self._restart_counts[game]
        for record in running:
            observation = self._runtime.inspect(record.container_id)
            if observation is None:
                continue  # left to the reconciler, as in the seed
            previous = self._restart_counts.get(record.game_id)
            self._restart_counts[record.game_id] = observation.restart_count
            if (
                (previous is not None and observation.restart_count > previous)
                or observation.state != "running"
                or observation.health == "unhealthy"
            ):
                self.unhealthy += 1


@dataclass
class Sample:
    wall_s: float
    client_cpu_s: float
    dockerd_cpu_s: float
    redis_cpu_s: float
    api_calls: int
    inspected: int

    @property
    def cpu_s(self) -> float:
        return self.client_cpu_s + self.dockerd_cpu_s + self.redis_cpu_s


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def daemon_pids(host: str) -> list[int]:
    """The private dockerd and the containerd it started (the shims do no work for a list or an inspect)."""
    dockerd = int((Path(urlparse(host).path).parent / "dockerd.pid").read_text().strip())
    pids = [dockerd]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == dockerd and name == "containerd":
            pids.append(int(entry.name))
    return pids


def redis_cpu_seconds(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measure(run: Callable[[], int], counter: ApiCallCounter, pids: list[int], r: redis.Redis) -> Sample:
    calls, daemons, redis_cpu = counter.calls, sum(map(process_cpu_seconds, pids)), redis_cpu_seconds(r)
    cpu, wall = time.process_time(), time.perf_counter()
    inspected = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Sample(
        wall_s=wall,
        client_cpu_s=cpu,
        dockerd_cpu_s=sum(map(process_cpu_seconds, pids)) - daemons,
        redis_cpu_s=redis_cpu_seconds(r) - redis_cpu,
        api_calls=counter.calls - calls,
        inspected=inspected,
    )


def start_containers(client: docker.DockerClient, count: int, engine_url: str) -> None:
    def start(index: int) -> tuple[str, str]:
        game = f"sweep-{index:04d}"
        container = client.containers.run(
            ENGINE_IMAGE,
            ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"],
            detach=True,
            network_mode="host",
            labels={GAME_LABEL: game},
        )
        return game, str(container.id)

    started: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for game, container_id in pool.map(start, range(count)):
            started.append((game, container_id))
            if len(started) % 50 == 0:
                print(f"started {len(started)}/{count} containers", flush=True)
    engine = create_engine(engine_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO rtmanager.runtime_records (game_id, status, current_container_id) "
                    "VALUES (:g, 'running', :c)"
                ),
                [{"g": g, "c": c} for g, c in started],
            )
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--sweeps", type=int, default=9, help="healthy sweeps of each kind after the first")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()

    galaxy: list[Sample] = []
    seed: list[Sample] = []
    with docker_world(args.redis_url) as world:
        r, host = world.r, world.docker_host
        started = time.monotonic()
        start_containers(world.client, args.containers, world.database_url)
        print(f"{args.containers} containers running after {time.monotonic() - started:.0f} s", flush=True)
        records = PostgresRuntimeRecords(world.engine)
        baselines = RedisInspectBaselines(r, args.redis_url)
        galaxy_runtime, seed_runtime = DockerRuntime(host, timeout=60), DockerRuntime(host, timeout=60)
        galaxy_calls, seed_calls = ApiCallCounter(galaxy_runtime), ApiCallCounter(seed_runtime)
        loop = SeedInspectLoop(records, seed_runtime)
        pids = daemon_pids(host)
        judged = FakeRuntimeStore()  # the judgements are counted, not published
        publisher = HealthPublisher(judged, FakeHealthStream())

        def galaxy_sweep() -> int:
            plan = plan_inspect_sweep(records, galaxy_runtime, baselines, now_ms=int(time.time() * 1000))
            for game_id, container_id, _ in plan.to_inspect:
                result = inspect_container(
                    galaxy_runtime,
                    baselines,
                    publisher,
                    records=records,
                    game_id=game_id,
                    container_id=container_id,
                    now_ms=int(time.time() * 1000),
                )
                assert "skipped" not in result, result
            return len(plan.to_inspect)

        def seed_tick() -> int:
            loop.tick()
            return int(args.containers)

        first_galaxy = measure(galaxy_sweep, galaxy_calls, pids, r)
        first_seed = measure(seed_tick, seed_calls, pids, r)
        for sweep in range(args.sweeps):  # alternately, so both see the same machine
            galaxy.append(measure(galaxy_sweep, galaxy_calls, pids, r))
            seed.append(measure(seed_tick, seed_calls, pids, r))
            print(
                f"sweep {sweep + 1}/{args.sweeps}: galaxy {galaxy[-1].wall_s * 1000:.0f} ms "
                f"{galaxy[-1].api_calls} calls, seed loop {seed[-1].wall_s * 1000:.0f} ms "
                f"{seed[-1].api_calls} calls",
                flush=True,
            )
        unhealthy = [event.game_id for event in judged.events]
        if unhealthy or loop.unhealthy:
            print(f"warning: unhealthy judgements in a healthy run: {unhealthy}, seed {loop.unhealthy}")
        galaxy_runtime.close()
        seed_runtime.close()

    report(args.containers, first_galaxy, first_seed, galaxy, seed)
    return 0


def medians(samples: list[Sample]) -> dict[str, float]:
    return {
        "wall_ms": round(statistics.median(s.wall_s for s in samples) * 1000, 1),
        "cpu_s": round(statistics.median(s.cpu_s for s in samples), 4),
        "client_cpu_s": round(statistics.median(s.client_cpu_s for s in samples), 4),
        "dockerd_cpu_s": round(statistics.median(s.dockerd_cpu_s for s in samples), 4),
        "redis_cpu_s": round(statistics.median(s.redis_cpu_s for s in samples), 4),
        "docker_api_calls": statistics.median(s.api_calls for s in samples),
        "full_inspects": statistics.median(s.inspected for s in samples),
    }


def report(containers: int, first_galaxy: Sample, first_seed: Sample, galaxy: list[Sample], seed: list[Sample]) -> None:
    ours, loop = medians(galaxy), medians(seed)
    calls_ratio = ours["docker_api_calls"] / loop["docker_api_calls"]
    cpu_ratio = ours["cpu_s"] / loop["cpu_s"] if loop["cpu_s"] else float("nan")
    figures: dict[str, Any] = {
        "containers": containers,
        "healthy_sweeps": len(galaxy),
        "first_sweep": {"galaxy_tasks": medians([first_galaxy]), "seed_loop": medians([first_seed])},
        "healthy_sweep_median": {"galaxy_tasks": ours, "seed_loop": loop},
        "ratios_galaxy_over_seed": {
            "docker_api_calls": round(calls_ratio, 4),
            "cpu_s": round(cpu_ratio, 3),
            "wall": round(ours["wall_ms"] / loop["wall_ms"], 3),
        },
        "targets": {
            "docker_api_calls_at_most_a_tenth": "PASS" if calls_ratio <= 0.1 else "MISS",
            "less_cpu": "PASS" if cpu_ratio < 1 else "MISS",
        },
    }
    print(json.dumps(figures, indent=2))
    out = REPO / "bench" / "results" / "inspect_sweep.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())
