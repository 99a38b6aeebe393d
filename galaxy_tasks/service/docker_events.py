"""The Docker events listener: a long-running singleton following managed containers' events.

It is the fast path of SPEC §5 "RTM: convergence"; the reconciler's relist is
the truth behind it.  Only the *current container of a running record* speaks
for a game, and only about accidents: events of any other container carrying
the game's label (a foreign one, a leftover, one the RTM retired itself with a
stop or a replacing start) publish nothing.  For the current container:

* ``die`` (or ``oom``) of a container Docker shows dead for good → the record
  goes ``running → exited`` in the CAS the reconciler and the inspect use
  too, and the winner publishes ``container_oom`` (OOMKilled with 137) or
  ``container_exited`` with the observed exit code;
* ``die`` of a container Docker's restart policy is restarting → one
  ``container_exited`` (or ``container_oom``) keyed by the Docker event; the
  record stays ``running``, and the crash is counted so that the inspect does
  not report the same restart again;
* ``oom`` of a container that keeps running (a helper process was killed) →
  nothing: the engine still serves;
* ``destroy`` → ``container_disappeared``, through the loss CAS;
* ``start`` of an ``exited`` record's very container → the record is ``running`` again (the
  reconciler's revival CAS; no event), so that its next death is reported;
* ``health_status: unhealthy`` → an inspect of that game right away.

It holds a lease (one listener in the cluster), reads Docker in short windows
so it can renew the lease and see a shutdown, saves its position after every
event (a Docker event re-read after a crash publishes nothing twice: its key is
recorded with it), and after a start or a lost connection asks for an
immediate reconcile, then resumes from that position — Docker keeps only a
small event buffer, so what fell out of it is the reconciler's to find.  A
position older than the idempotency keys' memory is not resumed from (an
event re-read then could be published twice): the listener starts from now
and the reconcile covers the gap.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from galaxy_tasks import metrics
from galaxy_tasks.domain.errors import TransientError
from galaxy_tasks.domain.rtmanager.convergence import death_event, is_dead_for_good
from galaxy_tasks.domain.rtmanager.docker_events import ContainerEvent, EventPosition, Reaction, reaction_to
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.inspect import DOCKER_STATE_RUNNING
from galaxy_tasks.domain.stream_fields import MAX_GAME_ID_BYTES
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.rtmanager import (
    ContainerEventSource,
    ContainerRuntime,
    InspectBaselineStore,
    ListenerState,
    RunningRecords,
)
from galaxy_tasks.ports.streams import Lease
from galaxy_tasks.service.health_publisher import HealthPublisher, Published
from galaxy_tasks.service.leased import run_leased

log = get_logger(__name__)


def _usable_game_id(game_id: str) -> bool:
    return "\x00" not in game_id and len(game_id.encode()) <= MAX_GAME_ID_BYTES


POSITION_MEMORY_NANOS = 86_400 * 1_000_000_000
"""A saved position older than this is not resumed from: the idempotency keys of the events
it would re-read may be pruned already (they are kept a day).  The start-up reconcile covers it."""


@dataclass(frozen=True)
class ListenerActions:
    publisher: HealthPublisher
    records: RunningRecords
    """Whose current container a running record names: only that container speaks for its game."""
    crashes: InspectBaselineStore
    """Where a published crash is counted, so the inspect does not report its restart again."""
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
                if position is None:
                    position = self._resume()
                for event in self._source.read(since_nano=position.floor, window_seconds=self._window):
                    if not position.is_new(event):
                        continue
                    self.handle(event, report)
                    position = position.after(event)
                    self._save(position)
                    report.handled += 1
            except TransientError as exc:
                log.warning("docker_events_backend_error", error=str(exc))
                position = None
                self._sleep(self._backoff)
        return "shutdown"

    def _resume(self) -> EventPosition:
        """Where to read from after a start or a lost connection; asks for the reconcile that covers the gap.

        A first start begins now: replaying Docker's buffer would publish stale
        exits of containers long replaced.  What happened before is the
        reconciler's to find, and it is asked for before the first read.
        """
        now = self._clock_ns()
        saved = self._state.load()
        if saved is not None and saved.time_nano < now - POSITION_MEMORY_NANOS:
            log.warning("docker_events_position_too_old", saved_nano=saved.time_nano)
            saved = None
        position = saved or EventPosition(now)
        self._actions.reconcile_now()
        log.info("docker_events_resuming", since_nano=position.floor, saved=saved is not None)
        return position

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

    def handle(self, event: ContainerEvent, report: ListenerReport) -> None:
        """React to one Docker event (the loop calls it for every new one; simulations call it directly)."""
        reaction = reaction_to(event.action)
        if reaction is Reaction.IGNORED:
            return
        if not _usable_game_id(event.game_id):
            # A label no record can carry (a NUL, kilobytes): anybody's container, never a game's.
            log.warning("docker_event_unusable_game_label", container_id=event.container_id, action=event.action)
            return
        if reaction is Reaction.STARTED:
            self._started(event)
            return
        current = self._actions.records.running_container(event.game_id)
        if current != event.container_id:
            # Not the current container of a running record: a foreign or retired one, or the game
            # is stopping/starting/exited already.  The reconciler lists unknown ones as orphans.
            log.debug(
                "docker_event_not_for_game",
                game_id=event.game_id,
                container_id=event.container_id,
                action=event.action,
                current=current,
            )
            return
        published: Published | None = None
        kind = ""
        if reaction in (Reaction.EXITED, Reaction.OOM):
            published, kind = self._stopped(event, reaction)
        elif reaction is Reaction.DESTROYED:
            loss = HealthEvent.container_disappeared(
                event.game_id, event.container_id, event.occurred_at_ms, reason="docker destroy"
            )
            published, kind = self._actions.publisher.publish_loss(loss), loss.event_type.value
        elif reaction is Reaction.UNHEALTHY:
            self._actions.inspect_now(event.game_id, event.container_id)
        if published is not None:
            report.published[kind] = report.published.get(kind, 0) + 1
            log.info(
                "docker_event_published",
                game_id=event.game_id,
                container_id=event.container_id,
                action=event.action,
                event_type=kind,
            )

    def _started(self, event: ContainerEvent) -> None:
        """An ``exited`` record's very container runs again (a daemon restart, a restart policy, by hand).

        Docker's state decides, not the event: a ``start`` read again after a
        restart of the listener is older than the death recorded since, and
        must not bring the record back (its ``die`` would then count twice).
        """
        observed = self._runtime.inspect(event.container_id)
        if observed is None or observed.state != DOCKER_STATE_RUNNING:
            return
        if self._actions.publisher.store.record_revival(event.game_id, event.container_id):
            metrics.RELIST_FINDINGS.labels("revived", "listener").inc()
            log.warning("container_running_again", game_id=event.game_id, container_id=event.container_id)

    def _stopped(self, event: ContainerEvent, reaction: Reaction) -> tuple[Published | None, str]:
        """A ``die`` or ``oom`` of the current container: Docker's state now says what it was."""
        observed = self._runtime.inspect(event.container_id)
        if observed is None:
            return None, ""  # removed already: its destroy (or the reconciler) reports the loss
        if is_dead_for_good(observed):
            death = death_event(event.game_id, observed, event.occurred_at_ms)
            return self._actions.publisher.publish_death(death), death.event_type.value
        if reaction is Reaction.OOM:
            return None, ""  # a helper process was OOM-killed, or the die that follows says the rest
        # Docker's restart policy brings it back: the crash is said once, keyed by the Docker event.
        exit_code = event.exit_code if event.exit_code is not None else observed.exit_code
        crash = death_event(event.game_id, replace(observed, exit_code=exit_code), event.occurred_at_ms)
        published = self._actions.publisher.publish_once(crash, event.key)
        if published is not None:
            with contextlib.suppress(TransientError):
                self._actions.crashes.ack_restart(event.container_id)
        return published, crash.event_type.value
