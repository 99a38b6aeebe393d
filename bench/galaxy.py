"""Scenarios (b), (c), (d) and the latency run: galaxy_tasks as real Celery processes.

A :class:`Rig` is one scenario's world: a fresh migrated database, the bench
Redis database flushed, one long-running worker (``-P threads``, where the
real stream bridge runs) and the pool worker(s) of the chosen
:class:`Layout`.  Between repetitions the rig stops the bridge (by taking its
lease away: the bridge notices at its next renewal and returns), waits until
the pools are idle, empties the Game Master's tables and the pipeline's Redis
keys, and pre-fills the stream; the timer starts when the bridge task is sent.
No beat by default: the measured path is the bridge and the pools, and the
per-event and chunk tasks publish their snapshots themselves right after
commit.  With ``beat=True`` it runs as deployed (periodic Lobby relay, order
repair) except that its supervisor is switched off with a huge interval: it
would relaunch the bridge behind the bench's back between repetitions.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from bench.noop_tasks import NOOP_TASK
from bench.stores import HEALTH_STREAM, Stores, database_url_for
from bench.workload import INITIAL_STATUS, INITIAL_TURN, Workload, entry, one_event_per_game
from galaxy_tasks.adapters.postgres.migrate import upgrade
from galaxy_tasks.celery_app import app
from galaxy_tasks.contract import HEALTH_EVENTS_BRIDGE_KEYS
from galaxy_tasks.processes import long_running_worker_args, pool_worker_args
from galaxy_tasks.queues import POOL_QUEUES
from galaxy_tasks.task_names import TaskName
from galaxy_tasks.testing.cluster import QUIET, CeleryProcess, Cluster, wait_until
from galaxy_tasks.testing.services import drop_database

log = logging.getLogger("bench")

POLL_SECONDS = 0.05
SUPERVISOR_OFF = "1000000"
"""GALAXY_SUPERVISOR_INTERVAL_SECONDS for beat: the bench starts and stops the bridge itself."""
NUDGE_SECONDS = 5.0
"""After this long without progress (everything handed on), the bench sends the order repair task once."""
REPAIR_AFTER_SECONDS = "3"
"""GALAXY_ORDER_REPAIR_AFTER_SECONDS of the workers: without beat the repair runs only when the bench nudges."""
STALL_SECONDS = 90.0
"""A run that makes no visible progress for this long is reported as stalled (longer than the order
repair's default GALAXY_ORDER_REPAIR_AFTER_SECONDS + GALAXY_ORDER_REPAIR_INTERVAL_SECONDS)."""
UNACKED_KEYS = ("unacked", "unacked_index")
"""Kombu's Redis transport keeps every delivered, not yet acknowledged message here (acks_late)."""


@dataclass(frozen=True)
class Layout:
    """How the pool side is laid out; the long-running worker is always ``-P threads -c 4``."""

    workers: int = 1
    concurrency: int = 2
    prefetch: int = 4
    pool: str = "prefork"
    loglevel: str = "INFO"
    """INFO as deployed (``galaxy-tasks run``); the harness also waits for the INFO line `` ready.``"""
    include: tuple[str, ...] = ()
    """Extra modules every worker imports (experiments: a module that patches settings)."""

    def describe(self) -> str:
        extra = f", --include {','.join(self.include)}" if self.include else ""
        return (
            f"{self.workers} pool worker(s) -P {self.pool} -c {self.concurrency}, "
            f"GALAXY_WORKER_PREFETCH_MULTIPLIER={self.prefetch}, --loglevel {self.loglevel}{extra}; "
            "+ 1 long-running worker -P threads -c 4 (the bridge)"
        )

    @property
    def includes(self) -> str:
        return ",".join(("bench.noop_tasks", *self.include))

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class BenchCluster(Cluster):
    """The harness's cluster (``galaxy_tasks.testing.cluster``), with pool workers that also import the no-op task."""

    def bench_pool_worker(self, name: str, layout: Layout) -> CeleryProcess:
        args = pool_worker_args(
            name,
            concurrency=layout.concurrency,
            pool=layout.pool,
            loglevel=layout.loglevel,
            extra=[*QUIET, "--include", layout.includes],
        )
        return self._spawn(name, args, ready_marker=" ready.")

    def bench_long_running_worker(self, layout: Layout) -> CeleryProcess:
        args = long_running_worker_args(
            "long-running", loglevel=layout.loglevel, extra=[*QUIET, "--include", layout.includes]
        )
        return self._spawn("long-running", args, ready_marker=" ready.")


@dataclass
class ThroughputRun:
    events: int
    seconds: float
    dispatch_seconds: float
    bridge: dict[str, Any]
    rows: dict[str, tuple[str, str, int]]
    lobby_events: int
    nudges: int = 0
    """Times the run stalled and the bench sent the order repair task to get it going again."""

    @property
    def rate(self) -> float:
        return self.events / self.seconds


@dataclass
class NoopRun:
    messages: int
    seconds: float
    send_seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


@dataclass
class LatencyRun:
    events: int
    target_rate: float
    achieved_rate: float
    commit_ms: list[float] = field(default_factory=list)
    lobby_ms: list[float] = field(default_factory=list)


class Rig:
    """One scenario's database, Redis and Celery processes."""

    def __init__(
        self,
        *,
        label: str,
        redis_url: str,
        admin_url: str,
        layout: Layout,
        log_dir: Path,
        overrides: dict[str, str],
        beat: bool = False,
    ) -> None:
        self.label = label
        self.layout = layout
        self.admin_url = admin_url
        self.database_url = database_url_for(admin_url, label)
        upgrade(self.database_url)
        self.stores = Stores(redis_url, self.database_url)
        self.stores.r.flushdb()
        log_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "GALAXY_REDIS_URL": redis_url,
            "GALAXY_BROKER_URL": redis_url,
            "GALAXY_DATABASE_URL": self.database_url,
            "GALAXY_METRICS_DIR": str(log_dir / "metrics"),
            "GALAXY_WORKER_PREFETCH_MULTIPLIER": str(layout.prefetch),
            "GALAXY_SUPERVISOR_INTERVAL_SECONDS": SUPERVISOR_OFF,
            **({} if beat else {"GALAXY_ORDER_REPAIR_AFTER_SECONDS": REPAIR_AFTER_SECONDS}),
            **overrides,
        }
        self.cluster = BenchCluster(env=env, log_dir=log_dir)
        self._bridge: Any = None
        try:
            self.cluster.bench_long_running_worker(layout)
            for index in range(layout.workers):
                self.cluster.bench_pool_worker(f"pool{index}", layout)
            if beat:
                self.cluster.beat()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            self.cluster.stop_all()
        finally:
            self.stores.close()
            drop_database(self.database_url, self.admin_url)

    # --- the bridge ----------------------------------------------------------------------------
    def start_bridge(self) -> None:
        self._bridge = app.send_task(TaskName.GM_HEALTH_EVENTS_BRIDGE.value)

    def stop_bridge(self) -> dict[str, Any]:
        """Take the lease away and wait for the bridge task's report."""
        if self._bridge is None:
            return {}
        lease = HEALTH_EVENTS_BRIDGE_KEYS.lease
        wait_until(lambda: self.stores.r.exists(lease), timeout=30, what="the bridge to hold its lease")
        self.stores.r.delete(lease)
        report = cast(dict[str, Any], self._bridge.get(timeout=30))
        self._bridge = None
        return report

    def queued(self) -> int:
        """Messages in the pool queues plus delivered-but-unacknowledged ones."""
        r = self.stores.r
        pipe = r.pipeline(transaction=False)
        for queue in POOL_QUEUES:
            pipe.llen(queue.value)
        pipe.hlen(UNACKED_KEYS[0])
        return sum(int(n) for n in pipe.execute())

    def wait_idle(self, timeout: float = 120) -> None:
        wait_until(lambda: self.queued() == 0, timeout=timeout, what="the pool queues to drain")

    def prepare(self, workload: Workload) -> list[str]:
        """Stop the bridge, reset, register the games running and pre-fill the stream."""
        self.stop_bridge()
        self.wait_idle()
        self.stores.reset()
        self.stores.add_games(workload.game_ids, status=INITIAL_STATUS, current_turn=INITIAL_TURN)
        return self.stores.xadd_all(workload.entries)

    # --- scenarios (b) and (c) ------------------------------------------------------------------
    def run_throughput(
        self,
        workload: Workload,
        *,
        before_start: Callable[[], object] = lambda: None,
        monitor: AbstractContextManager[object] | None = None,
        timeout: float = 900,
    ) -> ThroughputRun:
        """Pre-fill, then time from sending the bridge task until every cursor is at its game's
        last entry and ``gm:lobby_events`` holds every snapshot the reference model expects
        (``monitor`` is entered around exactly that).  The Lobby's own view, not the outbox
        table: rows appended right after commit stay in the table until the periodic relay
        clears them."""
        ids = self.prepare(workload)
        last = workload.last_index_by_game()
        games = sorted(last)
        last_ids = [ids[last[g]] for g in games]
        final_id = ids[-1]
        _, expected_lobby = workload.expected()
        dispatched: float | None = None
        before_start()
        with monitor or contextlib.nullcontext():
            started = time.perf_counter()
            self.start_bridge()
            watch = _StallWatch(self.label, started + timeout)
            nudges = 0
            while True:
                now = time.perf_counter()
                offset = self.stores.offset()
                if dispatched is None and offset == final_id:
                    dispatched = now
                done = self.stores.games_done(games, last_ids)
                lobby = self.stores.lobby_count()
                if dispatched is not None and done == len(games) and lobby >= expected_lobby:
                    break
                state = f"offset {offset}, {done}/{len(games)} games done, lobby {lobby}/{expected_lobby}"
                watch.check(now, (offset, done, lobby), state)
                if dispatched is not None and watch.idle_for(now) > NUDGE_SECONDS * (nudges + 1):
                    nudges += 1
                    self.nudge_repair(state)
                time.sleep(POLL_SECONDS)
        seconds = now - started
        bridge = self.stop_bridge()
        return ThroughputRun(
            events=len(ids),
            seconds=seconds,
            dispatch_seconds=(dispatched or now) - started,
            bridge=bridge,
            rows=self.stores.rows(),
            lobby_events=self.stores.lobby_count(),
            nudges=nudges,
        )

    def nudge_repair(self, state: str) -> None:
        """A game is stuck (e.g. a parked entry nobody released): run the order repair now."""
        name = getattr(TaskName, "GM_REPAIR_HEALTH_EVENT_ORDER", None)
        log.warning("%s: no progress for %.0fs (%s); sending the order repair task", self.label, NUDGE_SECONDS, state)
        if name is not None:
            app.send_task(name.value)

    # --- scenario (d) ------------------------------------------------------------------------------
    def run_noop(
        self,
        handoffs: Sequence[list[object]],
        *,
        before_start: Callable[[], object] = lambda: None,
        monitor: AbstractContextManager[object] | None = None,
        timeout: float = 300,
    ) -> NoopRun:
        """Send one no-op task per handoff as the bridge sends, and time until all are acknowledged."""
        self.stop_bridge()
        self.wait_idle()
        before_start()
        with monitor or contextlib.nullcontext():
            started = time.perf_counter()
            with app.producer_or_acquire() as producer:
                for args in handoffs:
                    app.send_task(NOOP_TASK, args=args, producer=producer, ignore_result=True)
            sent = time.perf_counter()
            done = _first_stable(lambda: self.queued() == 0, timeout=timeout, what="the no-op tasks to run")
        return NoopRun(messages=len(handoffs), seconds=done - started, send_seconds=sent - started)

    # --- latency ----------------------------------------------------------------------------------
    def run_latency(
        self,
        games: Sequence[str],
        *,
        rate: float,
        seed: int,
        before_start: Callable[[], object] = lambda: None,
        monitor: AbstractContextManager[object] | None = None,
        timeout: float = 120,
    ) -> LatencyRun:
        """XADD one entry per game at a steady ``rate``; latency = commit time - wall clock before XADD."""
        self.stop_bridge()
        self.wait_idle()
        self.stores.reset()
        self.stores.add_games(games, status=INITIAL_STATUS, current_turn=INITIAL_TURN)
        self.start_bridge()
        wait_until(
            lambda: self.stores.r.exists(HEALTH_EVENTS_BRIDGE_KEYS.lease), timeout=30, what="the bridge to start"
        )
        before_start()  # also lets the bridge settle into its blocking XREAD
        rng = random.Random(seed)
        plan = one_event_per_game(seed=seed, games=games)
        sent_ms: dict[str, float] = {}
        entry_ids: dict[str, str] = {}
        r = self.stores.r
        with monitor or contextlib.nullcontext():
            started = time.perf_counter()
            for index, (game_id, event_type) in enumerate(plan):
                delay = started + index / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                wall_ms = time.time() * 1000
                fields = entry(game_id, event_type, rng, occurred_at_ms=int(wall_ms))
                entry_ids[game_id] = str(r.xadd(HEALTH_STREAM, fields))  # type: ignore[arg-type]
                sent_ms[game_id] = wall_ms
            achieved = len(plan) / (time.perf_counter() - started)
            wait_until(
                lambda: (
                    self.stores.games_done(list(entry_ids), list(entry_ids.values())) == len(entry_ids)
                    and self.stores.lobby_count() >= len(plan)
                ),
                timeout=timeout,
                what="the latency events to be applied",
            )
        committed = self.stores.cursor_times_ms(list(games))
        lobby = self.stores.lobby_first_ms()
        self.stop_bridge()
        return LatencyRun(
            events=len(plan),
            target_rate=rate,
            achieved_rate=achieved,
            commit_ms=[committed[g] - sent_ms[g] for g in games],
            lobby_ms=[lobby[g] - sent_ms[g] for g in games if g in lobby],
        )


class _StallWatch:
    """Raise when the progress signature has not changed for ``STALL_SECONDS`` or past the deadline."""

    def __init__(self, label: str, deadline: float) -> None:
        self._label = label
        self._deadline = deadline
        self._last: object = None
        self._since = time.perf_counter()

    def idle_for(self, now: float) -> float:
        return now - self._since

    def check(self, now: float, signature: object, state: str) -> None:
        if signature != self._last:
            self._last, self._since = signature, now
        if now - self._since > STALL_SECONDS:
            raise TimeoutError(f"{self._label}: no progress for {STALL_SECONDS:.0f}s ({state})")
        if now > self._deadline:
            raise TimeoutError(f"{self._label}: not settled in time ({state})")


def _first_stable(predicate: Callable[[], bool], *, timeout: float, what: str, confirm: float = 0.1) -> float:
    """The first time ``predicate`` held, provided it still holds ``confirm`` seconds later.

    The confirmation guards against the instant a message is between the
    queue and the unacked hash (popped, not yet recorded).
    """
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            seen = time.perf_counter()
            time.sleep(confirm)
            if predicate():
                return seen
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
