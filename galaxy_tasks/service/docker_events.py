"""The Docker events listener: a long-running singleton following managed containers' events.

* ``oom`` → ``container_oom``; ``die`` → ``container_exited`` with its exit
  code, except the ``die`` of an OOM kill (Docker may send ``oom`` before or
  after ``die``: the container's ``OOMKilled`` decides, and one claim per
  container makes the OOM reported once);
* ``destroy`` of the current container of a running record →
  ``container_disappeared``, through the CAS the reconciler uses too;
* ``health_status: unhealthy`` → an inspect of that game right away.

It holds a lease (one listener in the cluster), reads Docker in short windows
so it can renew the lease and see a shutdown, saves its position after every
event (a Docker event re-read after a crash publishes nothing twice: its key is
recorded with it), and after a start or a lost connection resumes from that position and
asks for an immediate reconcile — Docker keeps only a small event buffer, so
what fell out of it is the reconciler's to find.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from galaxy_tasks.domain.errors import TransientError
from galaxy_tasks.domain.rtmanager.docker_events import ContainerEvent, EventPosition, Reaction, reaction_to
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports import ContainerRuntime, Lease
from galaxy_tasks.service.leased import run_leased

log = get_logger(__name__)


class ContainerEventSource(Protocol):
    def read(self, *, since_nano: int, window_seconds: float) -> Iterable[ContainerEvent]:
        """Events from ``since_nano`` on, as they arrive, for about ``window_seconds``."""
        ...


class ListenerState(Protocol):
    def load(self) -> EventPosition | None:
        """``None`` when no listener ever saved a position."""
        ...

    def save(self, position: EventPosition) -> None: ...

    def note_oom(self, container_id: str) -> None: ...

    def oom_seen(self, container_id: str) -> bool: ...


@dataclass(frozen=True)
class ListenerActions:
    publish: Callable[[HealthEvent, str], object | None]
    """Publish once per idempotency key (the Docker event's key): a re-read event writes nothing."""
    publish_loss: Callable[[HealthEvent], object | None]
    inspect_now: Callable[[str, str], object]
    reconcile_now: Callable[[], object]


@dataclass
class ListenerReport:
    holder: str
    exit_reason: str = ""
    handled: int = 0
    published: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "holder": self.holder,
            "exit_reason": self.exit_reason,
            "handled": self.handled,
            "published": self.published,
        }


class DockerEventsListener:
    def __init__(
        self,
        *,
        source: ContainerEventSource,
        runtime: ContainerRuntime,
        state: ListenerState,
        lease: Lease,
        actions: ListenerActions,
        window_seconds: float = 2.0,
        error_backoff_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._source = source
        self._runtime = runtime
        self._state = state
        self._lease = lease
        self._actions = actions
        self._window = window_seconds
        self._backoff = error_backoff_seconds
        self._sleep = sleep
        self._clock_ns = clock_ns

    def run(self, should_stop: Callable[[], bool]) -> ListenerReport:
        report = ListenerReport(self._lease.holder)
        report.exit_reason = run_leased(
            self._lease, lambda: self._loop(report, should_stop), name="docker_events_listener"
        )
        return report

    def _loop(self, report: ListenerReport, should_stop: Callable[[], bool]) -> str:
        position: EventPosition | None = None
        while not should_stop():
            try:
                if self._renew() is False:
                    return "lease_lost"
                resumed = position is None
                if position is None:
                    # A first start begins now: replaying Docker's buffer would publish stale exits of
                    # containers long replaced.  What happened before is the reconciler's to find.
                    position = self._state.load() or EventPosition(self._clock_ns())
                for event in self._source.read(since_nano=position.floor, window_seconds=self._window):
                    if not position.is_new(event):
                        continue
                    self._handle(event, report)
                    position = position.after(event)
                    self._save(position)
                    report.handled += 1
                if resumed:  # Docker answered again: let the reconciler find what fell out of its buffer
                    self._actions.reconcile_now()
                    log.info("docker_events_resumed", since_nano=position.floor)
            except TransientError as exc:
                log.warning("docker_events_backend_error", error=str(exc))
                position = None
                self._sleep(self._backoff)
        return "shutdown"

    def _renew(self) -> bool | None:
        """``False`` only when someone else holds the lease; ``None`` when Redis cannot say.

        With Redis unreachable the listener goes on: what it publishes carries
        idempotency keys in PostgreSQL, so even a second listener could not
        publish an event twice, and a Redis outage must not stop Docker's
        events from reaching the snapshot store.
        """
        try:
            return self._lease.renew()
        except TransientError as exc:
            log.warning("docker_events_lease_unknown", error=str(exc))
            return None

    def _save(self, position: EventPosition) -> None:
        """Best effort: a position not saved only means events re-read (and skipped by key) later."""
        try:
            self._state.save(position)
        except TransientError as exc:
            log.warning("docker_events_position_not_saved", error=str(exc))

    def _oom_seen(self, container_id: str) -> bool:
        try:
            return self._state.oom_seen(container_id)
        except TransientError:
            return False  # OOMKilled from the inspect decides on its own

    def _note_oom(self, container_id: str) -> None:
        with contextlib.suppress(TransientError):
            self._state.note_oom(container_id)

    def _handle(self, event: ContainerEvent, report: ListenerReport) -> None:
        reaction = reaction_to(event.action)
        published: HealthEvent | None = None
        if reaction is Reaction.OOM:
            self._note_oom(event.container_id)
            observed = self._runtime.inspect(event.container_id)
            if observed is not None and observed.state != "running":
                published = self._oom(event, observed.exit_code)
        elif reaction is Reaction.EXITED:
            observed = self._runtime.inspect(event.container_id)
            exit_code = event.exit_code if event.exit_code is not None else (observed.exit_code if observed else -1)
            if (observed is not None and observed.oom_killed) or self._oom_seen(event.container_id):
                published = self._oom(event, exit_code)
            else:
                exited = HealthEvent.container_exited(
                    event.game_id, event.container_id, event.occurred_at_ms, exit_code=exit_code
                )
                if self._actions.publish(exited, event.key) is not None:
                    published = exited
        elif reaction is Reaction.DESTROYED:
            loss = HealthEvent.container_disappeared(
                event.game_id, event.container_id, event.occurred_at_ms, reason="docker destroy"
            )
            if self._actions.publish_loss(loss) is not None:
                published = loss
        elif reaction is Reaction.UNHEALTHY:
            self._actions.inspect_now(event.game_id, event.container_id)
        if published is not None:
            kind = published.event_type.value
            report.published[kind] = report.published.get(kind, 0) + 1
            log.info(
                "docker_event_published",
                game_id=event.game_id,
                container_id=event.container_id,
                action=event.action,
                event_type=kind,
            )

    def _oom(self, event: ContainerEvent, exit_code: int) -> HealthEvent | None:
        """One ``container_oom`` per container, whichever of ``oom``/``die`` gets here (key: the container)."""
        oom = HealthEvent.container_oom(event.game_id, event.container_id, event.occurred_at_ms, exit_code=exit_code)
        if self._actions.publish(oom, f"{event.container_id}:oom-kill") is None:
            return None
        return oom
