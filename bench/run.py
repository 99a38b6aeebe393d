"""Benchmark of the Game Master health pipeline: seed 001's loop vs galaxy_tasks on Celery.

Run from the repository root (see bench/README.md)::

    .venv/bin/python bench/run.py            # the full run, ~7-9 minutes on 2 cores
    .venv/bin/python bench/run.py --explore  # compare pool layouts for (b) and (d) instead

Scenarios, each on a fresh database and the bench's own Redis database:

(a) seed 001's consumer loop ported one-at-a-time (one process, autocommit statements);
(b) galaxy_tasks, per-event tasks (backlog mode off);
(c) galaxy_tasks in backlog mode (one chunk task per game partition);
(d) a no-op Celery task sent the way the bridge sends: the floor of per-task overhead;
plus the XADD-to-commit latency at a steady 100 events/s with (b) running.

Prints a table with PASS/MISS per target and writes bench/results/latest.json.
It never fails the build: the exit status is 0 whenever the run completed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/run.py` puts bench/, not the repository, on the path
    sys.path.insert(0, str(REPO))

RESULTS_DIR = REPO / "bench" / "results"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
DEFAULT_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
NO_BACKLOG = 1_000_000_000
PER_EVENT = {"GALAXY_BACKLOG_THRESHOLD": str(NO_BACKLOG), "GALAXY_DISPATCH_WINDOW": "0"}
"""Overrides for one ``gamemaster.apply_health_event`` per entry: no lag threshold, no flow control."""

TARGET_C_OVER_A = 4.0
TARGET_P99_MS = 100.0

SCENARIOS = ("a", "b", "c", "d", "latency")
DEFAULT_REPS = {"a": 3, "b": 2, "c": 3, "d": 3}
"""(b) takes about 1.5 minutes per repetition on 2 cores; 2 of them keep the whole run under ~10 minutes."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=20_000, help="entries per throughput run (default 20000)")
    p.add_argument("--games", type=int, default=1_000, help="running games they are spread over (default 1000)")
    p.add_argument(
        "--reps",
        type=int,
        default=None,
        help="repetitions of every throughput scenario (default: 3, but 2 for the slow (b))",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed of the workload")
    p.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated subset of a,b,c,d,latency")
    p.add_argument("--redis-url", default=os.environ.get("GALAXY_BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    p.add_argument(
        "--admin-url",
        default=os.environ.get("GALAXY_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="PostgreSQL URL allowed to create and drop databases",
    )
    layout = p.add_argument_group("pool layout (b, c, d, latency)")
    layout.add_argument("--workers", type=int, default=1, help="pool worker processes (default 1)")
    layout.add_argument("--concurrency", type=int, default=4, help="-c of each pool worker (default 4)")
    layout.add_argument("--prefetch", type=int, default=4, help="GALAXY_WORKER_PREFETCH_MULTIPLIER (default 4)")
    layout.add_argument("--pool", default="prefork", help="-P of the pool workers (default prefork)")
    layout.add_argument(
        "--include",
        default="",
        help="extra modules every worker imports, comma-separated (for experiments, e.g. a settings patch)",
    )
    p.add_argument(
        "--beat",
        action="store_true",
        help="also run celery beat as deployed (Lobby relay, order repair; its supervisor switched off)",
    )
    p.add_argument("--backlog-threshold", type=int, default=500, help="GALAXY_BACKLOG_THRESHOLD for (c)")
    p.add_argument("--latency-rate", type=float, default=100.0, help="events/s of the latency run")
    p.add_argument("--latency-seconds", type=float, default=20.0, help="length of the latency run")
    p.add_argument(
        "--quiet-timeout",
        type=float,
        default=60.0,
        help="before each run, wait up to this long for other work on the machine to calm down (default 60)",
    )
    p.add_argument("--explore", action="store_true", help="compare pool layouts with (b) and (d) instead")
    p.add_argument("--explore-events", type=int, default=10_000, help="events per layout in --explore")
    p.add_argument("--json", type=Path, default=RESULTS_DIR / "latest.json", help="where to write the figures")
    args = p.parse_args(argv)
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    args.rep_counts = {k: args.reps or v for k, v in DEFAULT_REPS.items()}
    unknown = args.only - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios in --only: {', '.join(sorted(unknown))}")
    return args


# --- figures -------------------------------------------------------------------------------------


@dataclass
class Throughput:
    """Repetitions of one throughput scenario."""

    name: str
    rates: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    foreign: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else float("nan")

    def add(self, rate: float, seconds: float, foreign: float, **extra: Any) -> None:
        self.rates.append(rate)
        self.seconds.append(seconds)
        self.foreign.append(foreign)
        for key, value in extra.items():
            self.extra.setdefault(key, []).append(value)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "median_events_per_second": _round(self.median),
            "runs_events_per_second": [_round(r) for r in self.rates],
            "runs_seconds": [round(s, 3) for s in self.seconds],
            "runs_other_cpu_share": [round(f, 3) for f in self.foreign],
            "notes": self.notes,
            **{k: v for k, v in self.extra.items()},
        }


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _round(value: float, digits: int = 1) -> float | None:
    return None if math.isnan(value) else round(value, digits)


QUIET_BELOW = 0.25
"""Share of the machine's CPU that counts as quiet enough to start a measured run."""


class Gate:
    """Before each measured run: wait (bounded) for a quiet machine; around it: watch other work's CPU."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self.monitor: Any = None

    def before_start(self) -> None:
        from bench.machine import wait_quiet

        share = wait_quiet(below=QUIET_BELOW, timeout=self._timeout)
        if share >= QUIET_BELOW:
            _log(f"  the machine is still {share:.0%} busy with other work; measuring anyway")

    def fresh_monitor(self) -> Any:
        from bench.machine import LoadMonitor

        self.monitor = LoadMonitor()
        return self.monitor

    @property
    def foreign(self) -> float:
        return 0.0 if self.monitor is None else float(self.monitor.load.foreign_share)

    def cpu_ms_per_event(self, events: int) -> dict[str, float]:
        """The last run's own CPU per event (ms), by role of the process that spent it."""
        if self.monitor is None or events <= 0:
            return {}
        by_role: dict[str, float] = self.monitor.load.own_cpu_by_role
        return {role: round(seconds * 1000 / events, 3) for role, seconds in sorted(by_role.items())}


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- running ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every started process is stopped and every database dropped.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    # galaxy_tasks reads its settings when first imported: point the bench process's Celery
    # app (the bridge launcher and the no-op producer) at the bench Redis before that.
    os.environ["GALAXY_REDIS_URL"] = args.redis_url
    os.environ["GALAXY_BROKER_URL"] = args.redis_url
    os.environ.pop("GALAXY_METRICS_DIR", None)
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.chdir(REPO)

    from galaxy_tasks.testing.services import require_postgres, require_redis

    require_redis(args.redis_url).flushdb()
    require_postgres(args.admin_url)
    run_dir = RESULTS_DIR / "logs" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    if args.explore:
        explore(args, run_dir)
    else:
        results = run_all(args, run_dir)
        results["wall_seconds"] = round(time.perf_counter() - began, 1)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print_report(results)
        _log(f"figures written to {args.json}; worker logs in {run_dir}")
    _log(f"total wall time {time.perf_counter() - began:.0f}s")
    return 0


def run_all(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    from bench.workload import game_ids, make_workload

    layout = layout_of(args)
    workload = make_workload(seed=args.seed, games=game_ids("g", args.games), events=args.events)
    expected_rows, expected_snapshots = workload.expected()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": {
            "events": args.events,
            "games": args.games,
            "repetitions": args.rep_counts,
            "seed": args.seed,
            "layout": layout.as_dict(),
            "layout_text": layout.describe(),
            "backlog_threshold_c": args.backlog_threshold,
            "beat": args.beat,
            "redis_url": args.redis_url,
            "expected_lobby_snapshots": expected_snapshots,
        },
    }
    checks: dict[str, bool] = {}

    def check(name: str, rows: dict[str, tuple[str, str, int]], lobby: int) -> None:
        ok = rows == expected_rows and lobby == expected_snapshots
        checks[name] = checks.get(name, True) and ok
        if not ok:
            differing = sum(1 for g, r in expected_rows.items() if rows.get(g) != r)
            _log(f"  !! {name}: {differing} rows differ from the reference, {lobby}/{expected_snapshots} snapshots")

    errors: dict[str, str] = {}
    ctx = Ctx(args, run_dir, layout, workload, check, results, errors)
    if "a" in args.only:
        scenario_a(ctx)
    if {"b", "d", "latency"} & args.only:
        scenario_bd(ctx)
    if "c" in args.only:
        scenario_c(ctx)
    results["consistency"] = {
        "description": "final runtime_records and number of gm:lobby_events entries equal the one-at-a-time reference",
        **checks,
    }
    for key, value in list(results.items()):
        if isinstance(value, Throughput):
            results[key] = value.as_dict()
    results["errors"] = errors
    results["ratios"], results["targets"] = targets(results)
    return results


Check = Callable[[str, dict[str, tuple[str, str, int]], int], None]


@dataclass
class Ctx:
    """What every scenario needs: options, the workload, the reference check, where results go."""

    args: argparse.Namespace
    run_dir: Path
    layout: Any
    workload: Any
    check: Check
    results: dict[str, Any]
    errors: dict[str, str]


def _failed(errors: dict[str, str], key: str, exc: Exception) -> None:
    errors[key] = f"{type(exc).__name__}: {exc}"
    _log(f"!! ({key}) failed: {errors[key]}")


def scenario_a(ctx: Ctx) -> None:
    from bench.seed_loop import run_seed_loop
    from bench.stores import Stores, database_url_for
    from bench.workload import INITIAL_STATUS, INITIAL_TURN
    from galaxy_tasks.adapters.postgres.migrate import upgrade
    from galaxy_tasks.testing.services import drop_database

    args, workload = ctx.args, ctx.workload
    figures = Throughput("(a) seed 001 loop, one at a time")
    figures.notes.append("XREAD COUNT 1 → SELECT → CAS/summary UPDATE → [SELECT → XADD] → SET offset, autocommit")
    ctx.results["a"] = figures
    gate = Gate(args.quiet_timeout)
    database_url = database_url_for(args.admin_url, "a")
    try:
        upgrade(database_url)
        stores = Stores(args.redis_url, database_url)
        try:
            for rep in range(args.rep_counts["a"]):
                stores.r.flushdb()
                stores.reset()
                stores.add_games(workload.game_ids, status=INITIAL_STATUS, current_turn=INITIAL_TURN)
                ids = stores.xadd_all(workload.entries)
                gate.before_start()
                with gate.fresh_monitor():
                    report = run_seed_loop(args.redis_url, database_url, ids[-1])
                rate = report.entries / report.seconds
                figures.add(
                    rate, report.seconds, gate.foreign, transitions=report.transitions, published=report.published
                )
                ctx.check("a", stores.rows(), stores.lobby_count())
                _log(
                    f"(a) rep {rep + 1}: {report.entries} entries in {report.seconds:.1f}s = {rate:.0f}/s"
                    f"{_other(gate.foreign)}"
                )
        finally:
            stores.close()
    except Exception as exc:  # noqa: BLE001 - report the scenario as failed, run the others
        _failed(ctx.errors, "a", exc)
    finally:
        drop_database(database_url, args.admin_url)


def scenario_bd(ctx: Ctx) -> None:
    from bench.galaxy import Rig

    wanted = [k for k in ("b", "latency", "d") if k in ctx.args.only]
    _log(f"(b)/(d)/latency: starting workers — {ctx.layout.describe()}")
    try:
        rig = Rig(
            label="b",
            redis_url=ctx.args.redis_url,
            admin_url=ctx.args.admin_url,
            layout=ctx.layout,
            log_dir=ctx.run_dir / "b",
            overrides=PER_EVENT,
            beat=ctx.args.beat,
        )
    except Exception as exc:  # noqa: BLE001
        for key in wanted:
            _failed(ctx.errors, key, exc)
        return
    try:
        warm_up(rig, ctx.args)
    except Exception as exc:  # noqa: BLE001 - nothing in this rig can be measured
        for key in wanted:
            _failed(ctx.errors, key, exc)
        rig.close()
        return
    gate = Gate(ctx.args.quiet_timeout)
    try:
        for key in wanted:
            try:
                if key == "b":
                    throughput(
                        ctx,
                        rig,
                        gate,
                        "b",
                        name="(b) galaxy_tasks, per-event tasks",
                        note="backlog mode and flow control off (PER_EVENT overrides): one message per entry",
                    )
                elif key == "latency":
                    ctx.results["latency"] = latency(ctx.args, rig, gate)
                else:
                    noop(ctx, rig, gate)
            except Exception as exc:  # noqa: BLE001
                _failed(ctx.errors, key, exc)
    finally:
        rig.close()


def throughput(ctx: Ctx, rig: Any, gate: Gate, key: str, *, name: str, note: str) -> None:
    figures = Throughput(name)
    figures.notes.append(note)
    ctx.results[key] = figures
    for rep in range(ctx.args.rep_counts[key]):
        run = rig.run_throughput(ctx.workload, before_start=gate.before_start, monitor=gate.fresh_monitor())
        figures.add(
            run.rate,
            run.seconds,
            gate.foreign,
            dispatch_seconds=round(run.dispatch_seconds, 2),
            stalls_repaired=run.nudges,
            bridge=run.bridge,
            cpu_ms_per_event=gate.cpu_ms_per_event(run.events),
        )
        ctx.check(key, run.rows, run.lobby_events)
        _log(
            f"({key}) rep {rep + 1}: {run.events} in {run.seconds:.1f}s = {run.rate:.0f}/s "
            f"(bridge handed all on after {run.dispatch_seconds:.1f}s, {run.bridge.get('chunks')} chunk tasks"
            f"{f', stalled and repaired {run.nudges}x' if run.nudges else ''}){_other(gate.foreign)}"
        )


def noop(ctx: Ctx, rig: Any, gate: Gate) -> None:
    figures = Throughput("(d) no-op Celery task (floor)")
    figures.notes.append("same workers; one send_task per message on a shared producer, ignore_result=True")
    ctx.results["d"] = figures
    handoffs = handoffs_of(ctx.workload.entries)
    for rep in range(ctx.args.rep_counts["d"]):
        run = rig.run_noop(handoffs, before_start=gate.before_start, monitor=gate.fresh_monitor())
        figures.add(
            run.rate,
            run.seconds,
            gate.foreign,
            send_seconds=round(run.send_seconds, 2),
            cpu_ms_per_event=gate.cpu_ms_per_event(run.messages),
        )
        _log(
            f"(d) rep {rep + 1}: {run.messages} in {run.seconds:.1f}s = {run.rate:.0f}/s "
            f"(producer done after {run.send_seconds:.1f}s){_other(gate.foreign)}"
        )


def latency(args: argparse.Namespace, rig: Any, gate: Gate) -> dict[str, Any]:
    from bench.workload import game_ids

    events = int(args.latency_rate * args.latency_seconds)
    run = rig.run_latency(
        game_ids("lat", events),
        rate=args.latency_rate,
        seed=args.seed + 7,
        before_start=gate.before_start,
        monitor=gate.fresh_monitor(),
    )
    out = {
        "events": run.events,
        "target_rate": run.target_rate,
        "achieved_rate": round(run.achieved_rate, 1),
        "p50_ms": round(percentile(run.commit_ms, 50), 1),
        "p99_ms": round(percentile(run.commit_ms, 99), 1),
        "max_ms": round(max(run.commit_ms), 1),
        "lobby_p50_ms": round(percentile(run.lobby_ms, 50), 1),
        "lobby_p99_ms": round(percentile(run.lobby_ms, 99), 1),
        "clock": "wall clock before XADD → cursor updated_at (now() of the applying transaction)",
        "other_cpu_share": round(gate.foreign, 3),
        "commit_ms_in_send_order": [round(v, 1) for v in run.commit_ms],
    }
    _log(
        f"latency: {run.events} events at {run.achieved_rate:.0f}/s, "
        f"p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms{_other(gate.foreign)}"
    )
    return out


def scenario_c(ctx: Ctx) -> None:
    from bench.galaxy import Rig

    threshold = ctx.args.backlog_threshold
    _log(f"(c): starting workers with GALAXY_BACKLOG_THRESHOLD={threshold}")
    try:
        rig = Rig(
            label="c",
            redis_url=ctx.args.redis_url,
            admin_url=ctx.args.admin_url,
            layout=ctx.layout,
            log_dir=ctx.run_dir / "c",
            # (c) as defined before flow control: chunks by the lag threshold, eight partitions.
            overrides={
                "GALAXY_BACKLOG_THRESHOLD": str(threshold),
                "GALAXY_DISPATCH_WINDOW": "0",
                "GALAXY_BACKLOG_PARTITIONS": "8",
            },
            beat=ctx.args.beat,
        )
    except Exception as exc:  # noqa: BLE001
        _failed(ctx.errors, "c", exc)
        return
    try:
        warm_up(rig, ctx.args)
        throughput(
            ctx,
            rig,
            Gate(ctx.args.quiet_timeout),
            "c",
            name="(c) galaxy_tasks, backlog mode",
            note=f"GALAXY_BACKLOG_THRESHOLD={threshold}: chunk tasks while lag >= threshold",
        )
    except Exception as exc:  # noqa: BLE001
        _failed(ctx.errors, "c", exc)
    finally:
        rig.close()


def layout_of(args: argparse.Namespace) -> Any:
    from bench.galaxy import Layout

    return Layout(args.workers, args.concurrency, args.prefetch, args.pool, include=_includes(args))


def _includes(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(m.strip() for m in args.include.split(",") if m.strip())


def warm_up(rig: Any, args: argparse.Namespace) -> None:
    """One small unmeasured run: imports done, connections open in every pool process."""
    from bench.workload import game_ids, make_workload

    rig.run_throughput(make_workload(seed=args.seed + 1, games=game_ids("warm", 300), events=600))


def _other(share: float) -> str:
    return f"; other work used {share:.0%} of the CPUs" if share >= 0.05 else ""


def handoffs_of(entries: Sequence[dict[str, str]]) -> list[list[object]]:
    """The arguments the bridge would send for ``entries`` (ids made up, previous entry per game)."""
    previous: dict[str, str] = {}
    out: list[list[object]] = []
    for index, fields in enumerate(entries):
        entry_id = f"1700000000000-{index}"
        game_id = fields["game_id"]
        out.append([entry_id, fields, previous.get(game_id)])
        previous[game_id] = entry_id
    return out


def targets(results: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    def median(key: str) -> float:
        value = results.get(key, {}).get("median_events_per_second")
        return float("nan") if value is None else float(value)

    c_over_a = median("c") / median("a")
    b_over_d = median("b") / median("d")
    p99 = float(results.get("latency", {}).get("p99_ms", float("nan")))
    ratios = {"c_over_a": _round(c_over_a, 2), "b_over_d": _round(b_over_d, 2)}
    rows = [
        ("(c)/(a) throughput", c_over_a, f">= {TARGET_C_OVER_A:g}", c_over_a >= TARGET_C_OVER_A, "x"),
        # (b)/(d) is a reported figure, not a target (issue 12): the per-event task does a durable, ordered,
        # exactly-once commit that a no-op does not, and on two cores both are CPU-bound.
        ("(b)/(d) throughput", b_over_d, "reported", None, "x"),
        ("p99 XADD → commit", p99, f"< {TARGET_P99_MS:g} ms", p99 < TARGET_P99_MS, " ms"),
    ]
    return ratios, [
        {
            "target": name,
            "value": _round(value, 2),
            "goal": goal,
            "result": "n/a" if math.isnan(value) else ("-" if ok is None else "PASS" if ok else "MISS"),
            "unit": unit.strip(),
        }
        for name, value, goal, ok, unit in rows
    ]


def _print_cpu_per_event(results: dict[str, Any], width: int) -> None:
    """Where each event's CPU went (median over the runs, per role): what bounds a CPU-bound rate."""
    from bench.machine import ROLES

    shown = {k: results[k]["cpu_ms_per_event"] for k in ("b", "c", "d") if results.get(k, {}).get("cpu_ms_per_event")}
    if not shown:
        return
    print("-" * width)
    print(f"{'CPU per event, ms (median of runs)':<36}" + "".join(f"{f'({k})':>10}" for k in shown))
    totals = dict.fromkeys(shown, 0.0)
    for role in ROLES:
        values = {k: statistics.median(run.get(role, 0.0) for run in runs) for k, runs in shown.items()}
        if not any(values.values()):
            continue
        for k, v in values.items():
            totals[k] += v
        print(f"  {role:<34}" + "".join(f"{v:>10.2f}" for v in values.values()))
    print(f"  {'total':<34}" + "".join(f"{v:>10.2f}" for v in totals.values()))
    cpus = results["machine"]["cpus"]
    print(
        f"  ({cpus} CPUs: a rate bound by CPU alone cannot exceed {cpus} * 1000 / total events/s; one process"
        " cannot use more than one CPU)"
    )


def print_report(results: dict[str, Any]) -> None:
    config = results["config"]
    machine = results["machine"]
    width = 100
    print()
    print("=" * width)
    reps = ", ".join(f"({k}) {v}" for k, v in config["repetitions"].items())
    print(f"galaxy_tasks health pipeline benchmark — {config['events']:,} events over {config['games']:,} games")
    print(f"pre-filled stream drained; repetitions {reps}; throughput figures are medians")
    print(f"machine: {machine['cpus']} CPUs, Python {machine['python']}, Celery {machine['celery']}")
    print(f"layout (b,c,d): {config['layout_text']}{'; with beat' if config['beat'] else ''}")
    print("-" * width)
    print(f"{'scenario':<36}{'median ev/s':>12}   {'runs ev/s':<22}{'runs s':<20}{'other CPU':>9}")
    for key in ("a", "b", "c", "d"):
        if key not in results:
            continue
        fig = results[key]
        runs = " / ".join(f"{r:.0f}" for r in fig["runs_events_per_second"]) or "-"
        secs = " / ".join(f"{s:.1f}" for s in fig["runs_seconds"]) or "-"
        other = max(fig["runs_other_cpu_share"], default=0.0)
        median = fig["median_events_per_second"]
        shown = "failed" if median is None else f"{median:.0f}"
        print(f"{fig['name']:<36}{shown:>12}   {runs:<22}{secs:<20}{other:>9.0%}")
    for key in ("b", "c"):
        stalls = results.get(key, {}).get("stalls_repaired", [])
        if any(stalls):
            runs = ", ".join(str(i + 1) for i, n in enumerate(stalls) if n)
            print(
                f"  ({key}) run {runs}: stalled (a game stopped short of its last entry) and went on "
                "after the bench sent the order repair task"
            )
    _print_cpu_per_event(results, width)
    if "latency" in results:
        lat = results["latency"]
        print("-" * width)
        print(
            f"latency, (b) at {lat['achieved_rate']:.0f} ev/s for {lat['events']} events, one game each"
            f" (other CPU {lat['other_cpu_share']:.0%}):\n"
            f"  XADD → commit (cursor updated_at)        p50 {lat['p50_ms']:7.1f} ms   p99 {lat['p99_ms']:7.1f} ms"
            f"   max {lat['max_ms']:.1f} ms\n"
            f"  XADD → on gm:lobby_events (upper bound)  p50 {lat['lobby_p50_ms']:7.1f} ms   "
            f"p99 {lat['lobby_p99_ms']:7.1f} ms"
        )
    for key, error in results["errors"].items():
        print(f"!! ({key}) failed: {error[:300]}")
    consistency = {k: v for k, v in results["consistency"].items() if k != "description"}
    if consistency:
        print("-" * width)
        said = ", ".join(f"({k}) {'yes' if v else 'NO'}" for k, v in consistency.items())
        print(f"same final rows and Lobby snapshot count as the one-at-a-time reference: {said}")
    print("-" * width)
    print(f"{'target':<28}{'value':>10}   {'goal':<12}{'result':<8}")
    for row in results["targets"]:
        value = "n/a" if row["value"] is None else f"{row['value']:.2f}{row['unit']}"
        print(f"{row['target']:<28}{value:>10}   {row['goal']:<12}{row['result']:<8}")
    print("=" * width)


def machine_info() -> dict[str, Any]:
    import celery

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "celery": celery.__version__,
        "platform": platform.platform(),
    }


# --- layout exploration ------------------------------------------------------------------------------

EXPLORE_LAYOUTS = (
    (1, 2, 1),
    (1, 2, 4),
    (1, 3, 4),
    (1, 4, 1),
    (1, 4, 4),
    (2, 2, 4),
)
"""(pool workers, -c each, prefetch multiplier) candidates for --explore."""


def explore(args: argparse.Namespace, run_dir: Path) -> None:
    """One (b) run and one (d) run per candidate layout, to choose the default layout."""
    from bench.galaxy import Layout, Rig
    from bench.workload import game_ids, make_workload

    workload = make_workload(seed=args.seed, games=game_ids("g", args.games), events=args.explore_events)
    handoffs = handoffs_of(workload.entries)
    rows: list[tuple[str, float, float, float]] = []
    for workers, concurrency, prefetch in EXPLORE_LAYOUTS:
        layout = Layout(workers, concurrency, prefetch, args.pool, include=_includes(args))
        _log(f"explore: {layout.describe()}")
        rig = Rig(
            label="x",
            redis_url=args.redis_url,
            admin_url=args.admin_url,
            layout=layout,
            log_dir=run_dir / f"explore-{workers}x{concurrency}-p{prefetch}",
            overrides=PER_EVENT,
            beat=args.beat,
        )
        gate = Gate(args.quiet_timeout)
        try:
            warm_up(rig, args)
            b = rig.run_throughput(workload, before_start=gate.before_start, monitor=gate.fresh_monitor())
            b_other = gate.foreign
            d = rig.run_noop(handoffs, before_start=gate.before_start, monitor=gate.fresh_monitor())
            d_other = gate.foreign
        finally:
            rig.close()
        rows.append((f"{workers} x -c {concurrency}, prefetch {prefetch}", b.rate, d.rate, max(b_other, d_other)))
        _log(f"  (b) {b.rate:.0f}/s{_other(b_other)}  (d) {d.rate:.0f}/s{_other(d_other)}")
    print(f"\n{'layout':<34}{'(b) ev/s':>10}{'(d) msg/s':>11}{'(b)/(d)':>9}{'other CPU':>11}")
    for name, b_rate, d_rate, other in rows:
        print(f"{name:<34}{b_rate:>10.0f}{d_rate:>11.0f}{b_rate / d_rate:>9.2f}{other:>11.0%}")


if __name__ == "__main__":
    sys.exit(main())
