"""Benchmark: start and stop N games through the Runtime Manager job streams, beside a plain Docker SDK loop.

    .venv/bin/python bench/jobs.py [--games 50] [--concurrency 4]

Starts a private dockerd (as the tests do), a fresh migrated database and the
bench Redis database flushed.  Two ways to start and stop the same number of
engine containers, one after the other so they never compete:

* **baseline** (first, before any celery process runs): a plain sequential
  Docker SDK loop in this process — N ``containers.run`` (host networking,
  64 MiB, half a CPU, no ``galaxy.game_id`` label so the Runtime Manager
  ignores them), then N ``stop`` + ``remove``, each call timed.
* **galaxy_tasks**: real ``celery`` processes — a pool worker (``-c
  --concurrency``, consuming ``rtmanager.jobs``), the long-running worker (the
  job-stream bridges, the Docker events listener …) and beat (whose supervisor
  launches them).  Once both bridges hold their leases, the bench appends N
  ``runtime:start_jobs`` entries at once and waits for N ``runtime:job_results``
  entries, then appends N ``runtime:stop_jobs`` entries and waits for N more.

Latency of a job = the millisecond part of its result's stream id minus that of
its job entry's id (both ids from the same Redis server's clock).  Jobs/s of a
phase = N over (last result's id minus first job entry's id).  Every result is
counted by outcome and error code (a healthy run is all ``success`` with no
error code), and the bench checks that no ``galaxy-game-*`` container is left
after the stops and counts ``runtime:health_events`` by type (expected: one
``container_started`` per start, from the job, and nothing for the stops: SPEC §5, a container the
RTM retired itself is not an accident, so its ``die`` is not published, and its removal must not
show up as ``container_disappeared``).  Prints its figures, with the ratios galaxy/baseline of the
jobs/s, and writes them to ``bench/results/jobs.json``; the celery logs stay in
``bench/results/logs/jobs-<UTC timestamp>/``.  Reports; exit status 0 whenever
the run completed.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import docker  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from bench.docker_latency import percentile  # noqa: E402
from bench.docker_world import docker_world  # noqa: E402
from galaxy_tasks.contract import (  # noqa: E402
    HEALTH_EVENTS_STREAM,
    JOB_RESULTS_STREAM,
    START_JOBS_BRIDGE_KEYS,
    START_JOBS_STREAM,
    STOP_JOBS_BRIDGE_KEYS,
    STOP_JOBS_STREAM,
)
from galaxy_tasks.demo.engine_image import ENGINE_IMAGE  # noqa: E402
from galaxy_tasks.domain.rtmanager.jobs import CONTAINER_NAME_PREFIX  # noqa: E402
from galaxy_tasks.testing.cluster import Cluster, wait_until  # noqa: E402
from galaxy_tasks.testing.engines import TEST_ENGINE_ENV  # noqa: E402

SLOW_SWEEPS = {
    "GALAXY_PROBE_INTERVAL_SECONDS": "30",
    "GALAXY_INSPECT_INTERVAL_SECONDS": "30",
    "GALAXY_RECONCILE_INTERVAL_SECONDS": "30",
}
"""The health sweeps stay out of the way of the jobs."""

BASELINE_LABEL = "galaxy.bench"
"""The baseline's containers carry this label, never the game label the Runtime Manager watches."""


def entry_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


@dataclass
class Phase:
    """One kind of job for every game: when each entry was appended and what came back."""

    kind: str
    job_ms: dict[str, int] = field(default_factory=dict)
    results: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)

    @property
    def latencies_ms(self) -> list[float]:
        return [float(got[0][0] - self.job_ms[game]) for game, got in self.results.items() if got]

    @property
    def missing(self) -> list[str]:
        return sorted(game for game in self.job_ms if not self.results.get(game))

    @property
    def duplicated(self) -> list[str]:
        return sorted(game for game, got in self.results.items() if len(got) > 1)

    def jobs_per_second(self) -> float | None:
        ends = [got[0][0] for got in self.results.values() if got]
        if not ends:
            return None
        span_ms = max(ends) - min(self.job_ms.values())
        return len(ends) / span_ms * 1000 if span_ms > 0 else None

    def outcomes(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for got in self.results.values():
            for _, fields in got:
                code = fields.get("error_code", "")
                counts[f"{fields.get('outcome', '?')}/{code}" if code else fields.get("outcome", "?")] += 1
        return dict(sorted(counts.items()))


def run_phase(
    r: redis.Redis, phase: Phase, *, stream: str, jobs: list[dict[str, str]], after: str, stall_seconds: float
) -> str:
    """Append every job at once, then read ``runtime:job_results`` until each game has a result; the last id read."""
    pipe = r.pipeline(transaction=False)
    for job in jobs:
        pipe.xadd(stream, job)  # type: ignore[arg-type]
    for job, entry_id in zip(jobs, pipe.execute(), strict=True):
        phase.job_ms[job["game_id"]] = entry_ms(str(entry_id))
    print(f"{phase.kind}: {len(jobs)} jobs appended to {stream}", flush=True)
    last_progress, done, reported = time.monotonic(), 0, 0
    while done < len(jobs):
        replies = cast(list[Any], r.xread({JOB_RESULTS_STREAM: after}, count=500, block=200))
        for _, entries in replies:
            for result_id, fields in entries:
                after = result_id
                game = fields.get("game_id", "")
                if game not in phase.job_ms:
                    print(f"warning: {phase.kind}: a result for a game not in this phase: {fields}", flush=True)
                    continue
                got = phase.results.setdefault(game, [])
                got.append((entry_ms(result_id), fields))
                if len(got) == 1:
                    done += 1
                last_progress = time.monotonic()
        if done >= reported + 10 or (done == len(jobs) and done != reported):
            reported = done
            print(f"{phase.kind}: {done}/{len(jobs)} results", flush=True)
        if time.monotonic() - last_progress > stall_seconds:
            print(
                f"warning: {phase.kind}: no new result for {stall_seconds:g} s; "
                f"{len(phase.missing)} games without one: {phase.missing[:10]}",
                flush=True,
            )
            break
    return after


def galaxy_containers(client: docker.DockerClient, *, running_only: bool = False) -> list[Any]:
    return list(client.containers.list(all=not running_only, filters={"name": f"^/{CONTAINER_NAME_PREFIX}"}))


def run_baseline(client: docker.DockerClient, games: int) -> tuple[list[float], list[float], float, float]:
    """N sequential starts, then N stop + remove: per-call seconds and the wall time of each loop."""
    starts: list[float] = []
    stops: list[float] = []
    containers: list[Any] = []
    began = time.perf_counter()
    for index in range(games):
        took = time.perf_counter()
        containers.append(
            client.containers.run(
                ENGINE_IMAGE,
                detach=True,
                name=f"baseline-{index}",
                network_mode="host",
                mem_limit="64m",
                nano_cpus=500_000_000,
                labels={BASELINE_LABEL: "baseline"},
            )
        )
        starts.append(time.perf_counter() - took)
        if (index + 1) % 10 == 0:
            print(f"baseline: {index + 1}/{games} started", flush=True)
    start_wall = time.perf_counter() - began
    began = time.perf_counter()
    for index, container in enumerate(containers):
        took = time.perf_counter()
        container.stop(timeout=5)
        container.remove(force=True)
        stops.append(time.perf_counter() - took)
        if (index + 1) % 10 == 0:
            print(f"baseline: {index + 1}/{games} stopped and removed", flush=True)
    stop_wall = time.perf_counter() - began
    return starts, stops, start_wall, stop_wall


def health_events_by_type(r: redis.Redis, games: int) -> dict[str, int]:
    """``runtime:health_events`` by type, once the Docker events listener has had a moment for the last events."""

    def counts() -> Counter[str]:
        entries = cast(list[tuple[str, dict[str, str]]], r.xrange(HEALTH_EVENTS_STREAM))
        return Counter(fields.get("event_type", "?") for _, fields in entries)

    time.sleep(2.0)  # what the listener would (wrongly) publish for the stops would be there by now
    return dict(sorted(counts().items()))


def job_durations_ms(engine: Engine, operation: str) -> list[float]:
    """``rtmanager.operation_log.duration_ms`` of one kind: the time a job held its game (Docker calls included)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT duration_ms FROM rtmanager.operation_log WHERE operation = :o"), {"o": operation}
        ).scalars()
        return [float(value) for value in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4, help="-c of the pool worker running the jobs")
    parser.add_argument(
        "--stall-seconds", type=float, default=120, help="give a phase up after this long without a result"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # run the clean-ups

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = REPO / "bench" / "results" / "logs" / f"jobs-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    games = [f"jobs-{index:03d}" for index in range(args.games)]
    start, stop = Phase("start"), Phase("stop")
    with docker_world(args.redis_url) as world:
        baseline = run_baseline(world.client, args.games)
        env = world.cluster_env(log_dir / "metrics", **TEST_ENGINE_ENV, **SLOW_SWEEPS)
        cluster = Cluster(env=env, log_dir=log_dir)
        print(f"celery logs: {log_dir}", flush=True)
        try:
            cluster.pool_worker("pool", concurrency=args.concurrency)
            cluster.long_running_worker()
            cluster.beat()
            wait_until(
                lambda: world.r.exists(START_JOBS_BRIDGE_KEYS.lease) and world.r.exists(STOP_JOBS_BRIDGE_KEYS.lease),
                timeout=60,
                what="the job-stream bridges to start",
            )
            after = run_phase(
                world.r,
                start,
                stream=START_JOBS_STREAM,
                jobs=[{"game_id": game, "image_ref": ENGINE_IMAGE} for game in games],
                after="0-0",
                stall_seconds=args.stall_seconds,
            )
            running = len(galaxy_containers(world.client, running_only=True))
            if running != args.games:
                print(f"warning: {running} {CONTAINER_NAME_PREFIX}* containers running, not {args.games}", flush=True)
            run_phase(
                world.r,
                stop,
                stream=STOP_JOBS_STREAM,
                jobs=[{"game_id": game, "reason": "admin_request"} for game in games],
                after=after,
                stall_seconds=args.stall_seconds,
            )
            left = [c.name for c in galaxy_containers(world.client)]
            if left:
                print(f"warning: {len(left)} {CONTAINER_NAME_PREFIX}* containers left after the stops: {left[:10]}")
            health = health_events_by_type(world.r, args.games)
            durations = job_durations_ms(world.engine, "start"), job_durations_ms(world.engine, "stop")
        finally:
            cluster.stop_all()

    report(
        games=args.games,
        concurrency=args.concurrency,
        start=start,
        stop=stop,
        baseline=baseline,
        durations=durations,
        containers_left=len(left),
        health_events=health,
        log_dir=log_dir,
    )
    return 0


def spread(values_ms: list[float]) -> dict[str, float | None]:
    if not values_ms:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": round(statistics.median(values_ms), 1),
        "p99": round(percentile(values_ms, 99), 1),
        "max": round(max(values_ms), 1),
    }


def rate(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def report(
    *,
    games: int,
    concurrency: int,
    start: Phase,
    stop: Phase,
    baseline: tuple[list[float], list[float], float, float],
    durations: tuple[list[float], list[float]],
    containers_left: int,
    health_events: dict[str, int],
    log_dir: Path,
) -> None:
    base_starts, base_stops, start_wall, stop_wall = baseline
    base_start_rate, base_stop_rate = len(base_starts) / start_wall, len(base_stops) / stop_wall
    start_rate, stop_rate = start.jobs_per_second(), stop.jobs_per_second()
    figures: dict[str, Any] = {
        "games": games,
        "concurrency": concurrency,
        "galaxy": {
            "start_jobs_per_s": rate(start_rate),
            "stop_jobs_per_s": rate(stop_rate),
            "start_latency_ms": spread(start.latencies_ms),
            "stop_latency_ms": spread(stop.latencies_ms),
            "start_job_duration_ms": spread(durations[0]),
            "stop_job_duration_ms": spread(durations[1]),
            "results": {"start": start.outcomes(), "stop": stop.outcomes()},
            "missing_results": {"start": start.missing, "stop": stop.missing},
            "duplicate_results": {"start": start.duplicated, "stop": stop.duplicated},
            "containers_left_after_stops": containers_left,
            "health_events_by_type": health_events,
        },
        "baseline_sequential_sdk": {
            "starts_per_s": rate(base_start_rate),
            "stops_per_s": rate(base_stop_rate),
            "start_ms": spread([s * 1000 for s in base_starts]),
            "stop_ms": spread([s * 1000 for s in base_stops]),
        },
        "ratios_galaxy_over_baseline": {
            "start_jobs_per_s": None if start_rate is None else round(start_rate / base_start_rate, 3),
            "stop_jobs_per_s": None if stop_rate is None else round(stop_rate / base_stop_rate, 3),
        },
        "celery_logs": str(log_dir),
    }
    healthy = {"start": {"success": games}, "stop": {"success": games}}
    if figures["galaxy"]["results"] != healthy:
        print(f"warning: not every job ended in success without an error code: {figures['galaxy']['results']}")
    expected_events = {"container_started": games}
    if health_events != expected_events:
        print(f"warning: health events {health_events}, expected {expected_events} (one start per game, no stop)")
    print(json.dumps(figures, indent=2))
    out = REPO / "bench" / "results" / "jobs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                **figures,
                "start_latency_ms": start.latencies_ms,
                "stop_latency_ms": stop.latencies_ms,
                "baseline_start_ms": [s * 1000 for s in base_starts],
                "baseline_stop_ms": [s * 1000 for s in base_stops],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
