"""Live load (issue 12): XADD → ``gm:lobby_events`` latency from a trickle to a burst.

What a newcomer gets: ``galaxy-tasks run --no-flower`` with default settings,
fed while it runs — steady rates (50, 100, 200, 500, 1,000, 2,000 entries/s,
20 s each), a backlog (20,000 entries appended while its bridge is paused, then
drained: scenario (c) of ``bench/run.py`` in this layout and state) and a burst
(20,000 entries at once) — compared in the same run with the one-at-a-time loop
of seed ``001`` fed the same way.  Every timed entry is a
``container_exited`` of a distinct running game, so every one must produce a
Lobby entry (a transition); latency is the Lobby entry's id minus the health
entry's id (both stamped by Redis: one clock).  For galaxy_tasks it also prints
the share of entries the bridge handed on as per-event tasks (the rest went in
chunks), and how fast the burst and the backlog were applied.  Reports; never
fails the build::

    .venv/bin/python bench/live_load.py [--rates 50,200] [--seconds 20] [--burst 20000] [--backlog 20000] [--skip-seed]

Redis database 13 of ``127.0.0.1:6379`` (flushed) and a fresh PostgreSQL
database per system (dropped at the end); the ``galaxy-tasks run`` process
group is stopped by its pid (SIGINT, then SIGKILL), also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median
from typing import Any, Protocol, cast

import redis
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.seed_loop import SeedConsumer  # noqa: E402
from bench.stores import HEALTH_STREAM, LOBBY_STREAM, OFFSET_KEY, Stores, database_url_for  # noqa: E402
from bench.workload import INITIAL_STATUS, INITIAL_TURN, entry  # noqa: E402
from galaxy_tasks.adapters.postgres.migrate import upgrade  # noqa: E402
from galaxy_tasks.testing.cluster import spawn_in_repo  # noqa: E402
from galaxy_tasks.testing.seed001 import ReferenceGameMaster, RefRecord  # noqa: E402
from galaxy_tasks.testing.services import drop_database, free_loopback_port  # noqa: E402

ADMIN_URL = os.environ.get("GALAXY_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("GALAXY_BENCH_LIVE_REDIS_URL", "redis://127.0.0.1:6379/13")
GALAXY_TASKS = str(Path(sys.executable).with_name("galaxy-tasks"))
TARGET_P99_MS = 250.0
TICK_SECONDS = 0.005
BRIDGE_LEASE = "gamemaster:stream_bridge:health_events:lease"


@dataclass
class RateResult:
    label: str
    target_rate: float
    timed: int
    achieved_rate: float
    p50_ms: float
    p99_ms: float
    done_seconds: float
    per_event_share: float | None = None
    applied_rate: float | None = None
    """Entries applied per second: a burst from its first XADD, a backlog from the moment its consumer
    was seen to resume (a bridge holding the lease again, the seed loop unpaused), to the last Lobby entry."""


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def _ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def feed(
    r: redis.Redis, games: Sequence[str], rate: float | None, rng: random.Random, fed: list[dict[str, str]]
) -> tuple[dict[str, str], float]:
    """XADD one ``container_exited`` per game, paced at ``rate`` (``None``: all at once); ids and achieved rate.

    Every entry's fields are added to ``fed``, in stream order, for the reference check."""
    ids: dict[str, str] = {}
    started = time.perf_counter()
    sent = 0
    while sent < len(games):
        due = len(games) if rate is None else min(len(games), int((time.perf_counter() - started) * rate) + 1)
        if due <= sent:
            time.sleep(TICK_SECONDS)
            continue
        pipe = r.pipeline(transaction=False)
        batch = games[sent:due]
        for game in batch:
            fields = entry(game, "container_exited", rng)
            fed.append(fields)
            pipe.xadd(HEALTH_STREAM, cast(Any, fields))
        for game, entry_id in zip(batch, pipe.execute(), strict=True):
            ids[game] = str(entry_id)
        sent = due
    return ids, len(games) / max(time.perf_counter() - started, 1e-9)


def wait_lobby(r: redis.Redis, health_ids: dict[str, str], after: str, timeout: float) -> dict[str, str]:
    """The first Lobby entry of each game, read from ``after`` on, until all are there or ``timeout``."""
    found: dict[str, str] = {}
    cursor = after
    deadline = time.monotonic() + timeout
    while len(found) < len(health_ids) and time.monotonic() < deadline:
        reply = cast(Any, r.xread({LOBBY_STREAM: cursor}, count=5000, block=500))
        for _stream, messages in reply or []:
            for entry_id, fields in messages:
                cursor = entry_id
                game = fields.get("game_id", "")
                if game in health_ids and game not in found:
                    found[game] = entry_id
    return found


def measure(
    r: redis.Redis, label: str, games: Sequence[str], rate: float | None, timeout: float, *, fed: list[dict[str, str]]
) -> RateResult:
    lobby_tail = cast(Any, r.xrevrange(LOBBY_STREAM, count=1))
    after = lobby_tail[0][0] if lobby_tail else "0-0"
    started = time.monotonic()
    ids, achieved = feed(r, games, rate, random.Random(len(games)), fed)
    lobby = wait_lobby(r, ids, after, timeout)
    result = timed_result(label, games, ids, lobby, timeout, target_rate=rate or 0.0, achieved=achieved)
    result.done_seconds = time.monotonic() - started
    if rate is None and len(lobby) == len(games):
        span_ms = max(_ms(e) for e in lobby.values()) - min(_ms(e) for e in ids.values())
        result.applied_rate = len(games) / max(span_ms / 1000, 1e-3)
    return result


def timed_result(
    label: str,
    games: Sequence[str],
    ids: dict[str, str],
    lobby: dict[str, str],
    timeout: float,
    *,
    target_rate: float,
    achieved: float,
) -> RateResult:
    latencies = [_ms(lobby[g]) - _ms(ids[g]) for g in games if g in lobby]
    missing = len(games) - len(lobby)
    if missing:
        print(f"  {label}: {missing} of {len(games)} entries had no Lobby entry within {timeout:.0f}s", flush=True)
    return RateResult(
        label=label,
        target_rate=target_rate,
        timed=len(latencies),
        achieved_rate=achieved,
        p50_ms=percentile(latencies, 50) if not missing else float("inf"),
        p99_ms=percentile(latencies, 99) if not missing else float("inf"),
        done_seconds=0.0,
    )


def redis_ms(r: redis.Redis) -> int:
    seconds, micros = cast(Any, r.time())
    return int(seconds) * 1000 + int(micros) // 1000


SETTLE_TIMEOUT_SECONDS = 60.0


def settle(stores: Stores) -> None:
    """Start each phase from a settled system: the previous phase's Lobby outbox rows cleared.

    They wait about ``GALAXY_OUTBOX_DURABLE_AFTER_SECONDS`` for Redis's disk and are then deleted by
    the periodic sweep; a phase started meanwhile would share the machine with that sweep.
    """
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    with stores.engine.connect() as conn:
        while conn.execute(text("SELECT EXISTS (SELECT 1 FROM gamemaster.lobby_outbox)")).scalar_one():
            if time.monotonic() > deadline:
                print("  (the Lobby outbox did not clear within 60 s; going on)", flush=True)
                return
            conn.commit()
            time.sleep(0.2)


def backlog_phase(
    stores: Stores, consumer: Consumer, label: str, games: Sequence[str], fed: list[dict[str, str]]
) -> RateResult:
    """Scenario (c) of ``bench/run.py``, live: the consumer paused (an outage) while the entries arrive,
    then resumed; the rate runs from its resumption (Redis's clock) to the last Lobby entry."""
    lobby_tail = cast(Any, stores.r.xrevrange(LOBBY_STREAM, count=1))
    after = lobby_tail[0][0] if lobby_tail else "0-0"
    consumer.pause()
    ids, _ = feed(stores.r, games, None, random.Random(len(games)), fed)
    started = time.monotonic()
    resumed_ms = consumer.resume()
    timeout = 900.0
    lobby = wait_lobby(stores.r, ids, after, timeout)
    result = timed_result(label, games, ids, lobby, timeout, target_rate=0.0, achieved=0.0)
    result.done_seconds = time.monotonic() - started
    if len(lobby) == len(games):
        span_ms = max(_ms(e) for e in lobby.values()) - resumed_ms
        result.applied_rate = len(games) / max(span_ms / 1000, 1e-3)
    return result


class Consumer(Protocol):
    def pause(self) -> None: ...

    def resume(self) -> int:
        """Let it consume again; when it did (Redis time, ms)."""
        ...


class PausedBridge:
    """Pauses galaxy_tasks' bridge the way an outage would: the bench takes its lease.

    The bridge finds its lease gone at its next renewal and stops (a batch it
    handed on but could not save is handed on again later: duplicates, which
    the consumer recognises).  Released, the lease is taken by a new bridge
    that beat's supervisor starts within its interval, from the stored offset.
    """

    TOKEN = "bench-live-load-pause"

    def __init__(self, r: redis.Redis) -> None:
        self._r = r

    def pause(self) -> None:
        self._r.set(BRIDGE_LEASE, self.TOKEN, px=600_000)
        time.sleep(1.0)  # the bridge renews before every read (blocking at most 0.5 s)

    def resume(self) -> int:
        if self._r.get(BRIDGE_LEASE) == self.TOKEN:
            self._r.delete(BRIDGE_LEASE)
        deadline = time.monotonic() + 60
        while self._r.get(BRIDGE_LEASE) in (None, self.TOKEN):
            if time.monotonic() > deadline:
                raise RuntimeError("no bridge took its lease back within 60 s of the pause")
            time.sleep(0.005)
        return redis_ms(self._r)


# --------------------------------------------------------------------------- the two systems


@contextmanager
def fresh_stores(label: str) -> Iterator[Stores]:
    database_url = database_url_for(ADMIN_URL, label)
    upgrade(database_url)
    stores = Stores(REDIS_URL, database_url)
    stores.r.flushdb()
    try:
        yield stores
    finally:
        stores.close()
        drop_database(database_url, ADMIN_URL)


@contextmanager
def galaxy_tasks_run(
    stores: Stores, run_dir: Path, extra: Sequence[str] = (), settings: Sequence[str] = ()
) -> Iterator[int]:
    """``galaxy-tasks run --no-flower`` with default settings (but ``settings``, ``NAME=value``); yields its
    metrics port."""
    port = free_loopback_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GALAXY_", "PROMETHEUS_"))}
    env.update(
        GALAXY_REDIS_URL=stores.redis_url,
        GALAXY_BROKER_URL=stores.redis_url,
        GALAXY_DATABASE_URL=stores.database_url,
        GALAXY_METRICS_PORT=str(port),
    )
    for setting in settings:
        name, _, value = setting.partition("=")
        env[name] = value
    log = (run_dir / "run.log").open("wb")
    run = spawn_in_repo([GALAXY_TASKS, "run", "--no-flower", "--run-dir", str(run_dir), *extra], env, log)
    try:
        deadline = time.monotonic() + 120
        while not stores.r.exists(BRIDGE_LEASE):
            if time.monotonic() > deadline or run.poll() is not None:
                raise RuntimeError(f"galaxy-tasks run did not start its bridge; see {run_dir / 'run.log'}")
            time.sleep(0.5)
        yield port
    finally:
        run.send_signal(signal.SIGINT)
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=10)
        log.close()


def dispatched_by_mode(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read().decode()
    counts: dict[str, float] = {}
    for line in body.splitlines():
        if line.startswith("galaxy_bridge_entries_dispatched_total{") and 'stream="runtime:health_events"' in line:
            mode = line.split('mode="', 1)[1].split('"', 1)[0]
            counts[mode] = counts.get(mode, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


class PausedSeedLoop:
    """Pauses the seed loop's process between entries (an outage of the consumer)."""

    def __init__(self, r: redis.Redis, paused: Any) -> None:
        self._r = r
        self.paused = paused

    def pause(self) -> None:
        self.paused.set()
        time.sleep(0.5)

    def resume(self) -> int:
        resumed = redis_ms(self._r)
        self.paused.clear()
        return resumed


def _run_seed_loop(redis_url: str, database_url: str, stop: Any, paused: Any, ready: Any) -> None:
    """The seed's consumer loop, reading from the stored offset until ``stop`` is set (a process of its own);
    ``ready`` is set once it is connected and about to read."""
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=10)
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with engine.connect() as conn:
            consumer = SeedConsumer(client, conn)
            last = str(client.get(OFFSET_KEY) or "0-0")
            ready.set()
            while not stop.is_set():
                if paused.is_set():
                    time.sleep(0.005)
                    continue
                reply = cast(Any, client.xread({HEALTH_STREAM: last}, count=1, block=200))
                for _stream, messages in reply or []:
                    for entry_id, fields in messages:
                        consumer.handle(entry_id, fields)
                        client.set(OFFSET_KEY, entry_id)
                        last = entry_id
    finally:
        client.close()
        engine.dispose()


@contextmanager
def seed_loop(stores: Stores) -> Iterator[PausedSeedLoop]:
    """Seed ``001``'s consumer loop in a process of its own (as the Go worker is: it shares no
    interpreter with the bench's feeder), reading from the stored offset until told to stop."""
    context = multiprocessing.get_context("spawn")
    stop, paused, ready = context.Event(), context.Event(), context.Event()
    process = context.Process(
        target=_run_seed_loop, args=(stores.redis_url, stores.database_url, stop, paused, ready), name="seed-001-loop"
    )
    process.start()
    try:
        if not ready.wait(timeout=60):
            raise RuntimeError("the seed loop's process did not start reading within 60 s")
        yield PausedSeedLoop(stores.r, paused)
    finally:
        stop.set()
        process.join(timeout=30)
        if process.exitcode is None:
            process.kill()
            process.join(timeout=10)
        if process.exitcode:
            raise RuntimeError(f"the seed loop's process failed (exit code {process.exitcode})")


def sweep(
    stores: Stores,
    system: str,
    consumer: Consumer,
    *,
    rates: Sequence[float],
    seconds: float,
    burst: int,
    backlog: int,
    search: int,
    port: int | None,
) -> tuple[list[RateResult], ReferenceCheck]:
    """The steady rates, then up to ``search`` more steady rates that narrow down the highest one
    with p99 < 250 ms, then the backlog (consumer paused while it arrives), then the burst; then the
    final rows and Lobby sequences of every game held against the one-at-a-time reference."""
    results: list[RateResult] = []
    fed: list[dict[str, str]] = []
    registered: list[str] = []

    def phase(label: str, rate: float | None, count: int) -> RateResult:
        games = [f"{system}-{len(results)}-{label.replace('/', '').replace(' ', '')}-{n}" for n in range(count)]
        settle(stores)
        stores.add_games(games, status=INITIAL_STATUS, current_turn=INITIAL_TURN)
        registered.extend(games)
        before = dispatched_by_mode(port) if port else {}
        timeout = max(300.0, 10 * count / rate) if rate else 900.0  # a collapse shows as latency, not a timeout
        if label.startswith("backlog"):
            result = backlog_phase(stores, consumer, label, games, fed)
        else:
            result = measure(stores.r, label, games, rate, timeout, fed=fed)
        if port:
            after = dispatched_by_mode(port)
            delta = {mode: after.get(mode, 0.0) - before.get(mode, 0.0) for mode in after}
            total = sum(delta.values())
            result.per_event_share = delta.get("event", 0.0) / total if total else None
        print(f"  {system:<12} {describe(result)}", flush=True)
        results.append(result)
        return result

    for rate in rates:
        phase(f"{rate:g}/s", rate, int(rate * seconds))
    for _ in range(search):
        probe = next_search_rate(results)
        if probe is None:
            break
        phase(f"{probe:g}/s", probe, int(probe * seconds))
    if backlog:
        phase(f"backlog {backlog}", None, backlog)
    if burst:
        phase(f"burst {burst}", None, burst)
    settle(stores)
    check = reference_check(stores, registered, fed)
    print(f"  {system:<12} {check.describe()}", flush=True)
    return results, check


SEARCH_RESOLUTION = 1.08
"""The search stops once the lowest failing rate is within 8 % of the highest passing one."""


def sustained_bounds(results: Sequence[RateResult]) -> tuple[float, float | None]:
    """The highest steady rate held with p99 < 250 ms, and the lowest rate above it that was not."""
    steady = [r for r in results if r.target_rate]
    held = max((r.target_rate for r in steady if r.p99_ms < TARGET_P99_MS), default=0.0)
    above = [r.target_rate for r in steady if r.target_rate > held and not r.p99_ms < TARGET_P99_MS]
    return held, min(above, default=None)


def next_search_rate(results: Sequence[RateResult]) -> float | None:
    """Bisect between the highest rate held and the lowest one missed (double when none was missed),
    rounded to 25/s; ``None`` once they are within ``SEARCH_RESOLUTION`` of each other."""
    held, missed = sustained_bounds(results)
    if not held:
        return None
    if missed is None:
        return held * 2
    if missed / held <= SEARCH_RESOLUTION:
        return None
    rate = round((held * missed) ** 0.5 / 25) * 25
    return rate if held < rate < missed else None


@dataclass
class ReferenceCheck:
    """How many games' final rows and Lobby sequences differ from the one-at-a-time reference's."""

    games: int
    rows_differ: int
    lobby_differ: int

    @property
    def same(self) -> bool:
        return self.rows_differ == 0 and self.lobby_differ == 0

    def describe(self) -> str:
        verdict = "same as" if self.same else "DIFFERENT from"
        return (
            f"final rows and Lobby sequences of {self.games} games {verdict} the one-at-a-time reference"
            f" ({self.rows_differ} rows, {self.lobby_differ} Lobby sequences differ)"
        )


def reference_check(stores: Stores, games: Sequence[str], fed: Sequence[dict[str, str]]) -> ReferenceCheck:
    """Apply what was fed, in stream order, to the reference model and compare per game: the row, and
    the whole sequence of ``gm:lobby_events`` entries (a duplicate or a missing one is a difference)."""
    reference = ReferenceGameMaster(records={g: RefRecord(INITIAL_STATUS, current_turn=INITIAL_TURN) for g in games})
    for fields in fed:
        reference.handle(dict(fields))
    rows = stores.rows()
    lobby: dict[str, list[tuple[str, str, str]]] = {}
    start = "-"
    while page := cast(list[tuple[str, dict[str, str]]], stores.r.xrange(LOBBY_STREAM, min=start, count=5000)):
        for _entry_id, f in page:
            snapshot = (f.get("runtime_status", ""), f.get("engine_health_summary", ""), f.get("current_turn", ""))
            lobby.setdefault(f.get("game_id", ""), []).append(snapshot)
        start = f"({page[-1][0]}"
    expected = {g: (r.status, r.engine_health, r.current_turn) for g, r in reference.records.items()}
    return ReferenceCheck(
        games=len(games),
        rows_differ=sum(1 for g in games if rows.get(g) != expected[g]),
        lobby_differ=sum(1 for g in games if lobby.get(g, []) != reference.snapshots.get(g, [])),
    )


def describe(result: RateResult) -> str:
    share = "" if result.per_event_share is None else f"  per-event {100 * result.per_event_share:.0f}%"
    if result.applied_rate is not None:
        share += f"  applied at {result.applied_rate:.0f}/s"
    return (
        f"{result.label:>12}: {result.timed:>6} timed at {result.achieved_rate:>7.0f}/s  "
        f"p50 {result.p50_ms:>9.1f} ms  p99 {result.p99_ms:>9.1f} ms  all done in {result.done_seconds:.1f}s{share}"
    )


def highest_sustained(results: Sequence[RateResult]) -> float:
    return sustained_bounds(results)[0]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rates", default="50,100,200,500,1000,2000", help="steady rates, entries/s")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each steady rate")
    p.add_argument("--burst", type=int, default=20000, help="entries appended at once after the rates (0: none)")
    p.add_argument("--backlog", type=int, default=20000, help="entries appended while the consumer is paused (0: none)")
    p.add_argument(
        "--search",
        type=int,
        default=5,
        help="more steady rates, bisecting for the highest rate with p99 < 250 ms (0: the sweep's rates only)",
    )
    p.add_argument("--skip-seed", action="store_true", help="galaxy_tasks only")
    p.add_argument(
        "--run-args",
        default="",
        help="more galaxy-tasks run options, e.g. '--pool-workers 2' or '--pool threads --pool-concurrency 8'",
    )
    p.add_argument("--json", default=str(REPO / "bench" / "results" / "live_load.json"))
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="GALAXY_NAME=VALUE",
        help="run galaxy-tasks with this setting changed (for experiments; the figures then are not the defaults')",
    )
    p.add_argument("--logs", metavar="DIR", help="keep galaxy-tasks run's run directory (its processes' logs) here")
    p.add_argument("--medians", nargs="+", metavar="JSON", help="print the medians of earlier runs' figures and stop")
    args = p.parse_args(argv)
    if args.medians:
        print_medians([json.loads(Path(f).read_text()) for f in args.medians])
        return 0
    rates = [float(r) for r in args.rates.split(",") if r]
    report: dict[str, Any] = {
        "rates": rates,
        "seconds": args.seconds,
        "burst": args.burst,
        "backlog": args.backlog,
        "search": args.search,
    }
    extra = shlex.split(args.run_args)
    report["run_args"] = extra
    report["settings"] = args.setting
    layout = " ".join([*args.setting, "galaxy-tasks run --no-flower", *extra]) + (
        "" if extra or args.setting else ", defaults"
    )
    print(f"galaxy_tasks ({layout}): {args.rates} /s x {args.seconds:g}s", flush=True)
    shape: dict[str, Any] = {
        "rates": rates,
        "seconds": args.seconds,
        "burst": args.burst,
        "backlog": args.backlog,
        "search": args.search,
    }
    with (
        fresh_stores("live_galaxy") as stores,
        kept_or_temporary(args.logs) as run_dir,
        galaxy_tasks_run(stores, run_dir, extra, args.setting) as port,
    ):
        galaxy, galaxy_check = sweep(stores, "galaxy", PausedBridge(stores.r), port=port, **shape)
    report["galaxy_tasks"] = [asdict(r) for r in galaxy]
    report["galaxy_reference"] = {**asdict(galaxy_check), "same": galaxy_check.same}
    seed: list[RateResult] = []
    if not args.skip_seed:
        print("seed 001 loop (one process, one entry at a time):", flush=True)
        with fresh_stores("live_seed") as stores, seed_loop(stores) as loop:
            seed, seed_check = sweep(stores, "seed-001", loop, port=None, **shape)
        report["seed_001"] = [asdict(r) for r in seed]
        report["seed_reference"] = {**asdict(seed_check), "same": seed_check.same}
    report["summary"] = summarize(galaxy, seed)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    print(f"figures in {args.json}")
    return 0


@contextmanager
def kept_or_temporary(path: str | None) -> Iterator[Path]:
    """``path`` (created, kept afterwards) or a temporary directory removed at the end."""
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="galaxy-live-") as run_dir:
        yield Path(run_dir)


def _missed(rate: float | None) -> str:
    return "no higher rate tried" if rate is None else f"missed at {rate:g}/s"


def print_medians(runs: Sequence[dict[str, Any]]) -> None:
    """Per system and phase, the median p50/p99 (every run's p99 in brackets), then the targets' medians."""
    for system in ("galaxy_tasks", "seed_001"):
        phases: dict[str, list[dict[str, Any]]] = {}
        for run in runs:
            for phase in run.get(system, []):
                phases.setdefault(phase["label"], []).append(phase)
        if not phases:
            continue
        print(f"{system} ({len(runs)} runs):")
        for label, seen in phases.items():
            p99s = [float(x["p99_ms"]) for x in seen]
            line = f"  {label:>14}: p50 {median([float(x['p50_ms']) for x in seen]):>8.0f} ms"
            line += f"  p99 {median(p99s):>8.0f} ms ({', '.join(f'{v:.0f}' for v in p99s)})"
            shares = [x["per_event_share"] for x in seen if x.get("per_event_share") is not None]
            if shares:
                line += f"  per-event {100 * min(shares):.0f}-{100 * max(shares):.0f}%"
            rates = [x["applied_rate"] for x in seen if x.get("applied_rate") is not None]
            if rates:
                line += f"  applied at {median(rates):.0f}/s ({', '.join(f'{v:.0f}' for v in rates)})"
            print(line)
    keys = ("galaxy_sustained", "galaxy_missed", "seed_sustained", "seed_missed", "sustained_ratio")
    for key in (*keys, "sustained_ratio_low", "burst_to_backlog"):
        values = [run["summary"][key] for run in runs if run.get("summary", {}).get(key) is not None]
        if values:
            print(f"{key}: median {median(values):g} ({', '.join(f'{v:g}' for v in values)})")


def summarize(galaxy: Sequence[RateResult], seed: Sequence[RateResult]) -> dict[str, Any]:
    """Issue 12's targets, as figures of this run."""
    galaxy_held, galaxy_missed = sustained_bounds(galaxy)
    summary: dict[str, Any] = {"galaxy_sustained": galaxy_held, "galaxy_missed": galaxy_missed}
    print(f"\nhighest steady rate with p99 < {TARGET_P99_MS:.0f} ms (and the lowest rate above it that missed):")
    print(f"  galaxy_tasks {galaxy_held:g}/s ({_missed(galaxy_missed)})")
    if seed:
        seed_held, seed_missed = sustained_bounds(seed)
        summary["seed_sustained"], summary["seed_missed"] = seed_held, seed_missed
        ratio = galaxy_held / seed_held if seed_held else float("inf")
        summary["sustained_ratio"] = ratio
        line = f"  seed 001     {seed_held:g}/s ({_missed(seed_missed)})   ratio {ratio:.2f} (target >= 4)"
        if seed_missed:
            summary["sustained_ratio_low"] = galaxy_held / seed_missed
            line += f"; at least {summary['sustained_ratio_low']:.2f} (held / the seed's missed rate)"
        print(line)
    rated = {r.label.split()[0]: r.applied_rate for r in galaxy if r.applied_rate is not None}
    if "burst" in rated and "backlog" in rated:
        summary["burst_rate"], summary["backlog_rate"] = rated["burst"], rated["backlog"]
        ratio = rated["burst"] / rated["backlog"]
        summary["burst_to_backlog"] = ratio
        print(
            f"burst applied at {rated['burst']:.0f}/s, the backlog at {rated['backlog']:.0f}/s:"
            f" ratio {ratio:.2f} (target >= 1)"
        )
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
