"""A whole Runtime Manager on the shipped fakes, on a simulated clock, with a Game Master at the end.

The real services — the events listener's handling, the reconciler, the
inspect and probe sweeps and tasks, the health publisher — run against
:class:`galaxy_tasks.testing.docker.FakeDocker` and
:class:`galaxy_tasks.testing.store.FakeRuntimeStore`; the periodic work runs
at the intervals of the given settings, and every stream entry is applied to
Game Master rows with the consumer's plans (one at a time, as SPEC §5 says the
pipeline behaves).  Docker's events pass through a filter that may lose,
duplicate or delay them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from galaxy_tasks.config import Settings
from galaxy_tasks.domain.gamemaster.plans import plan_for
from galaxy_tasks.domain.gamemaster.records import GameRecord
from galaxy_tasks.domain.rtmanager.docker_events import ContainerEvent, EventPosition
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.probe import ProbeThresholds
from galaxy_tasks.service.docker_events import DockerEventsListener, ListenerActions, ListenerReport
from galaxy_tasks.service.health_publisher import HealthPublisher
from galaxy_tasks.service.inspect_sweep import inspect_container, plan_inspect_sweep
from galaxy_tasks.service.probe_sweep import plan_probe_sweep, probe_engine
from galaxy_tasks.service.reconciler import reconcile
from galaxy_tasks.testing.bridge import FakeLease
from galaxy_tasks.testing.docker import FakeDocker
from galaxy_tasks.testing.store import (
    FakeHealthStream,
    FakeInspectBaselines,
    FakeOrphanReport,
    FakeProbeStates,
    FakeRuntimeStore,
)

START_MS = 1_800_000_000_000


class _NoPosition:
    def load(self) -> EventPosition | None:
        return None

    def save(self, position: EventPosition) -> None:
        return None


@dataclass
class EventFaults:
    """How Docker's events reach the listener: each lost, duplicated or delayed (reordered) with a probability."""

    lose: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    max_delay_ticks: int = 3


class World:
    def __init__(self, settings: Settings | None = None, *, seed: int = 0) -> None:
        self.settings = settings or Settings()
        self.rng = random.Random(seed)
        self.now_ms = START_MS
        self.docker = FakeDocker(lambda: self.now_ms)
        self.store = FakeRuntimeStore()
        self.stream = FakeHealthStream()
        self.publisher = HealthPublisher(self.store, self.stream)
        self.baselines = FakeInspectBaselines()
        self.probe_states = FakeProbeStates()
        self.orphans = FakeOrphanReport()
        self.gm: dict[str, GameRecord] = {}
        self.faults = EventFaults()
        self._seen_events = 0
        self._pending: list[tuple[int, ContainerEvent]] = []
        self._applied = 0
        self._ticks = 0
        self.report = ListenerReport("sim")
        self.listener = DockerEventsListener(
            source=self.docker,
            runtime=self.docker,
            state=_NoPosition(),
            lease=FakeLease(),
            actions=ListenerActions(self.publisher, self.store, self.baselines, self._inspect_now, self.reconcile),
        )

    # --- what the jobs do (the start and stop jobs' effect on records, Docker and the stream) ---
    def start(self, game_id: str, *, max_restarts: int = 3, always: bool = False) -> str:
        old = self.store.records.get(game_id)
        if old is not None and old.status == "running":
            self.store.mark(game_id, "starting")  # its container goes on purpose
        named = self.docker.named.get(game_id)
        if named is not None:
            self.docker.remove(named)
        container_id = self.docker.run(game_id, max_restarts=max_restarts, always=always)
        self.store.put_record(game_id, "running", container_id, f"fake://{game_id}")
        self.gm.setdefault(game_id, GameRecord(game_id, "running", "", 0))
        self.publisher.publish(HealthEvent.container_started(game_id, container_id, self.now_ms, image_ref="engine:1"))
        self._apply_stream()
        return container_id

    def stop(self, game_id: str) -> None:
        self.store.mark(game_id, "stopping")
        named = self.docker.named.get(game_id)
        if named is not None:
            self.docker.remove(named)
        self.store.put_record(game_id, "stopped", "")

    def current(self, game_id: str) -> str:
        return self.store.records[game_id].container_id

    # --- time ------------------------------------------------------------------------------
    def run_for(self, seconds: float, *, faults: EventFaults | None = None) -> None:
        self.faults = faults or EventFaults()
        for _ in range(int(seconds)):
            self.tick()

    def tick(self) -> None:
        """One simulated second: Docker restarts, events delivered, the periodic work that is due."""
        self.now_ms += 1000
        self._ticks += 1
        self.docker.tick()
        self._deliver_events()
        s = self.settings
        if self._ticks % max(1, int(s.probe_interval_seconds)) == 0:
            self.probe_sweep()
        if self._ticks % max(1, int(s.inspect_interval_seconds)) == 0:
            self.inspect_sweep()
        if self._ticks % max(1, int(s.reconcile_interval_seconds)) == 0:
            self.reconcile()
        self._apply_stream()

    def _deliver_events(self) -> None:
        new = self.docker.events[self._seen_events :]
        self._seen_events = len(self.docker.events)
        f = self.faults
        for event in new:
            if self.rng.random() < f.lose:
                continue
            copies = 2 if self.rng.random() < f.duplicate else 1
            for _ in range(copies):
                delay = self.rng.randint(1, f.max_delay_ticks) if self.rng.random() < f.delay else 0
                self._pending.append((self._ticks + delay, event))
        due = [e for t, e in self._pending if t <= self._ticks]
        self._pending = [(t, e) for t, e in self._pending if t > self._ticks]
        for event in due:
            self.listener.handle(event, self.report)

    def _inspect_now(self, game_id: str, container_id: str) -> object:
        return self._inspect(game_id, container_id, 0)

    def _inspect(self, game_id: str, container_id: str, down_seq: int) -> object:
        return inspect_container(
            self.docker,
            self.baselines,
            self.publisher,
            records=self.store,
            game_id=game_id,
            container_id=container_id,
            now_ms=self.now_ms,
            down_seq=down_seq,
            success_threshold=self.settings.probe_success_threshold,
        )

    def inspect_sweep(self) -> None:
        plan = plan_inspect_sweep(self.store, self.docker, self.baselines, now_ms=self.now_ms)
        for game_id, container_id, down_seq in plan.to_inspect:
            self._inspect(game_id, container_id, down_seq)

    def probe_sweep(self) -> None:
        s = self.settings
        plan = plan_probe_sweep(self.store, self.docker, self.probe_states, grace_seconds=s.probe_startup_grace_seconds)
        for game_id, container_id, endpoint, down_seq in plan.to_probe:
            probe_engine(
                self.docker,
                self.probe_states,
                self.publisher,
                game_id=game_id,
                container_id=container_id,
                endpoint=endpoint,
                thresholds=ProbeThresholds(s.probe_failure_threshold, s.probe_success_threshold),
                now_ms=self.now_ms,
                down_seq=down_seq,
            )

    def reconcile(self) -> object:
        return reconcile(self.store, self.store, self.docker, self.orphans, self.publisher, now_ms=self.now_ms)

    # --- the Game Master, one entry at a time ----------------------------------------------
    def _apply_stream(self) -> None:
        for fields in self.stream.entries[self._applied :]:
            plan = plan_for(fields["event_type"])
            record = self.gm.get(fields["game_id"])
            if plan is None or record is None:
                continue
            status = record.status
            if plan.transition is not None and status == plan.transition.source:
                status = plan.transition.target
            self.gm[record.game_id] = GameRecord(record.game_id, status, plan.summary, record.current_turn)
        self._applied = len(self.stream.entries)

    # --- what the truth is -----------------------------------------------------------------
    def mismatches(self) -> list[str]:
        """Every game whose record, snapshot or Game Master row disagrees with the fake Docker."""
        wrong: list[str] = []
        for game_id, record in sorted(self.store.records.items()):
            if record.status in ("stopped",):
                continue
            container = self.docker.containers.get(record.container_id)
            snapshot = self.store.snapshots[game_id].snapshot
            gm = self.gm[game_id]
            seen: tuple[str, ...] = (record.status, snapshot.status.value, gm.status, gm.engine_health)
            if container is None and record.status == "exited":
                want = seen  # died for good, then removed: the death stays the game's story
            elif container is None:
                want = ("disappeared", "container_disappeared", "engine_unreachable", "disappeared")
            elif container.state == "exited":
                cause = "oom" if container.oom_killed and container.exit_code == 137 else "exited"
                want = ("exited", cause, "engine_unreachable", cause)
            elif container.state == "running" and container.serving:
                want = ("running", "healthy", "running", "healthy")
            else:
                want = seen  # restarting, or not serving: nothing settled to compare with
            if seen != want:
                wrong.append(f"{game_id}: {seen} != {want} (container {container})")
        return wrong


def random_accident(world: World, rng: random.Random, games: list[str]) -> Callable[[], None]:
    """One thing that happens to a random game's current container (or next to it)."""
    game = rng.choice(games)
    record = world.store.records[game]

    def crash() -> None:
        if record.container_id in world.docker.containers:
            world.docker.crash(record.container_id, exit_code=rng.choice([1, 2, 3]), oom=rng.random() < 0.3)

    def kill_for_good() -> None:
        if record.container_id in world.docker.containers:
            world.docker.kill(record.container_id)

    def vanish() -> None:
        world.docker.remove(record.container_id)

    def replace() -> None:
        world.start(game)

    def stop_then_start() -> None:
        world.stop(game)
        world.start(game)

    def helper_oom() -> None:
        if record.container_id in world.docker.containers:
            world.docker.oom_helper(record.container_id)

    def foreign_dies() -> None:
        foreign = world.docker.run(game, max_restarts=0, named=False)
        world.docker.crash(foreign, exit_code=9)

    def hiccup() -> None:
        container = world.docker.containers.get(record.container_id)
        if container is not None:
            world.docker.set_serving(record.container_id, not container.serving)

    def daemon_restart() -> None:
        world.docker.restart_daemon()

    accidents = [crash, crash, kill_for_good, vanish, replace, stop_then_start, helper_oom, foreign_dies, hiccup]
    return rng.choice([*accidents, daemon_restart])
