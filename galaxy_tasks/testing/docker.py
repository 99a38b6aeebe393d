"""A fake Docker Engine: containers with a restart policy, and the events Docker would send about them.

It implements the ports the health observers use — ``ContainerRuntime``
(list, inspect), the listener's ``ContainerEventSource`` and the probes'
``Prober`` (an engine answers while its container runs and serves) — so the
real services can be driven through crashes, restarts, deaths for good,
removals and replacements on a simulated clock.  Its event log is complete;
a test that wants Docker's events lost, duplicated or reordered filters what
:meth:`FakeDocker.read` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from galaxy_tasks.domain.rtmanager.docker_events import ContainerEvent
from galaxy_tasks.domain.rtmanager.inspect import InspectObservation
from galaxy_tasks.ports.rtmanager import ListedContainer

RESTART_DELAY_MS = 100
"""Docker waits 100 ms before the first restart of a crashed container."""


@dataclass
class FakeContainer:
    container_id: str
    game_id: str
    state: str
    started_at_ms: int
    max_restarts: int
    """``on-failure:N``; 0 is the policy ``no``."""
    restart_count: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    health: str = ""
    serving: bool = True
    """The engine's health endpoint answers (while the container runs)."""
    restart_at_ms: int = 0
    always: bool = False
    """Restart policy ``always``: a daemon restart starts it again."""


class FakeDocker:
    """One Docker host; ``clock_ms`` is the simulated time."""

    def __init__(self, clock_ms: Callable[[], int]) -> None:
        self._clock_ms = clock_ms
        self.containers: dict[str, FakeContainer] = {}
        self.named: dict[str, str] = {}
        """``galaxy-game-{game_id}`` → container id: the container a start job made for the game."""
        self.events: list[ContainerEvent] = []
        self._ids = 0
        self._event_seq = 0

    # --- what happens to containers ---------------------------------------------------------
    def run(self, game_id: str, *, max_restarts: int = 3, named: bool = True, always: bool = False) -> str:
        """Create and start a container labelled for ``game_id``; ``named``: under the game's name."""
        self._ids += 1
        container_id = f"{self._ids:04d}" + "c" * 60
        self.containers[container_id] = FakeContainer(
            container_id, game_id, "running", self._clock_ms(), max_restarts, always=always
        )
        if named:
            self.named[game_id] = container_id
        self._emit(container_id, "start")
        return container_id

    def crash(self, container_id: str, *, exit_code: int = 1, oom: bool = False) -> None:
        """The engine's main process dies; Docker's restart policy decides what comes next."""
        c = self.containers[container_id]
        if c.state != "running":
            return
        if oom:
            self._emit(container_id, "oom")
        c.exit_code, c.oom_killed = (137, True) if oom else (exit_code, False)
        if c.restart_count < c.max_restarts:
            c.state, c.restart_at_ms = "restarting", self._clock_ms() + RESTART_DELAY_MS
        else:
            c.state = "exited"
        self._emit(container_id, "die", exit_code=c.exit_code)

    def kill(self, container_id: str) -> None:
        """``docker kill``: SIGKILL, exit 137, and Docker does not restart a container it killed on request."""
        c = self.containers[container_id]
        if c.state not in ("running", "restarting"):
            return
        c.state, c.exit_code, c.oom_killed = "exited", 137, False
        self._emit(container_id, "kill")
        self._emit(container_id, "die", exit_code=137)

    def oom_helper(self, container_id: str) -> None:
        """The kernel OOM-kills a helper process; the engine keeps running and serving."""
        self._emit(container_id, "oom")

    def remove(self, container_id: str) -> None:
        """``docker rm -f``."""
        c = self.containers.get(container_id)
        if c is None:
            return
        if c.state in ("running", "restarting"):
            self.kill(container_id)
        del self.containers[container_id]
        if self.named.get(c.game_id) == container_id:
            del self.named[c.game_id]
        self._emit(container_id, "destroy", game_id=c.game_id)

    def restart_daemon(self) -> None:
        """dockerd stops (its containers with it: exit 143) and starts again; ``always`` containers run anew.

        The events of the shutdown are in the log; whoever reads it may miss them
        (Docker's buffer does not survive the restart).
        """
        for c in self._all():
            if c.state in ("running", "restarting"):
                c.state, c.exit_code, c.oom_killed = "exited", 143, False
                self._emit(c.container_id, "die", exit_code=143)
        for c in self._all():
            if c.always and c.state == "exited":
                self.start_again(c.container_id)

    def start_again(self, container_id: str) -> None:
        """``docker start`` of a stopped container (or dockerd starting an ``always`` one)."""
        c = self.containers[container_id]
        c.state, c.started_at_ms = "running", self._clock_ms()
        self._emit(container_id, "start")

    def set_serving(self, container_id: str, serving: bool) -> None:
        self.containers[container_id].serving = serving

    def tick(self) -> None:
        """Docker's restart manager: bring back the containers whose restart delay is over."""
        now = self._clock_ms()
        for c in self.containers.values():
            if c.state == "restarting" and c.restart_at_ms <= now:
                c.state, c.restart_count, c.started_at_ms = "running", c.restart_count + 1, now
                self._emit(c.container_id, "start")

    # --- ContainerRuntime -------------------------------------------------------------------
    def list_managed(self) -> dict[str, ListedContainer]:
        return {
            c.container_id: ListedContainer(c.container_id, c.game_id, c.state, self._status(c)) for c in self._all()
        }

    def inspect(self, container_id: str) -> InspectObservation | None:
        c = self.containers.get(container_id)
        if c is None:
            return None
        return InspectObservation(
            c.container_id, c.state, c.restart_count, c.health, c.started_at_ms, c.oom_killed, c.exit_code
        )

    # --- the listener's ContainerEventSource ------------------------------------------------
    def read(self, *, since_nano: int, window_seconds: float) -> list[ContainerEvent]:
        return [e for e in self.events if e.time_nano >= since_nano]

    # --- Prober -----------------------------------------------------------------------------
    def probe(self, endpoint: str) -> tuple[bool, str]:
        """``fake://{game_id}`` answers while the game's named container runs and serves."""
        game_id = endpoint.removeprefix("fake://")
        container_id = self.named.get(game_id)
        c = self.containers.get(container_id or "")
        if c is None or c.state != "running":
            return False, "connection refused"
        return (True, "") if c.serving else (False, "HTTP 503")

    # --- helpers ----------------------------------------------------------------------------
    def _all(self) -> Iterable[FakeContainer]:
        return list(self.containers.values())

    def _status(self, c: FakeContainer) -> str:
        if c.state == "running":
            seconds = (self._clock_ms() - c.started_at_ms) // 1000
            if seconds < 1:
                return "Up Less than a second"
            return f"Up {seconds} seconds" if seconds < 60 else f"Up {seconds // 60} minutes"
        if c.state == "restarting":
            return f"Restarting ({c.exit_code}) Less than a second ago"
        return f"Exited ({c.exit_code}) 1 second ago"

    def _emit(self, container_id: str, action: str, *, exit_code: int | None = None, game_id: str = "") -> None:
        self._event_seq += 1
        game = game_id or self.containers[container_id].game_id
        time_nano = self._clock_ms() * 1_000_000 + self._event_seq
        self.events.append(ContainerEvent(container_id, game, action, time_nano, exit_code))
