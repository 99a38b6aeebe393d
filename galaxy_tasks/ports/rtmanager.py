"""The Runtime Manager's health ports: records, Docker as the observers see it, their state,
the health event store, probes, Docker's events and the follow-up work they ask for."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from galaxy_tasks.domain.rtmanager.convergence import RecoveryEvidence
from galaxy_tasks.domain.rtmanager.docker_events import ContainerEvent, EventPosition
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.inspect import InspectBaseline, InspectObservation
from galaxy_tasks.domain.rtmanager.probe import ProbeState
from galaxy_tasks.ports.outbox import OutboxEntry


@dataclass(frozen=True)
class RunningRecord:
    """A ``rtmanager.runtime_records`` row in status ``running``."""

    game_id: str
    container_id: str
    engine_endpoint: str
    down_seq: int = 0
    """The game's current down period (the number of the down event that began it); 0 when it is not down."""
    death_exit_code: int | None = None
    """Of an ``exited`` record: the exit code of the death recorded for it (``None``: not known)."""


@dataclass(frozen=True)
class ListedContainer:
    """One row of the filtered container list: what a sweep can tell without an inspect."""

    container_id: str
    game_id: str
    state: str
    status: str
    """Docker's human status, e.g. ``Up 5 minutes (unhealthy)``, ``Restarting (1) 2 seconds ago``."""


class RunningRecords(Protocol):
    def running(self) -> list[RunningRecord]: ...

    def exited(self) -> list[RunningRecord]:
        """Records in status ``exited``: their container died for good, as far as anyone saw."""
        ...

    def running_container(self, game_id: str) -> str | None:
        """The current container of the game's record while the record is ``running``; ``None`` otherwise.

        Only that container speaks for the game (SPEC §5 "RTM: convergence").
        """
        ...


class ContainerRuntime(Protocol):
    """The Docker Engine, for the health sweeps."""

    def list_managed(self) -> dict[str, ListedContainer]:
        """Every managed container, running or not, by container id (one API call)."""
        ...

    def inspect(self, container_id: str) -> InspectObservation | None:
        """``None`` when the container does not exist."""
        ...


class InspectBaselineStore(Protocol):
    """Per-game inspect baselines shared by every worker."""

    def get(self, game_id: str) -> InspectBaseline | None: ...

    def all(self) -> dict[str, InspectBaseline]: ...

    def put(self, game_id: str, baseline: InspectBaseline) -> None: ...

    def drop(self, game_ids: Iterable[str]) -> int:
        """Forget the baselines of ``game_ids``; how many went."""
        ...

    def ack_restart(self, container_id: str) -> None:
        """The events listener published a crash of ``container_id`` that Docker restarts."""
        ...

    def acked_restarts(self, container_id: str) -> int:
        """How many crashes of ``container_id`` the listener published."""
        ...


class HealthEventStore(Protocol):
    def record(self, event: HealthEvent) -> OutboxEntry:
        """Upsert the game's snapshot and queue the stream entry, in one transaction."""
        ...

    def record_once(self, event: HealthEvent, key: str) -> OutboxEntry | None:
        """The same, unless an event with this idempotency ``key`` was recorded before."""
        ...

    def record_loss(self, event: HealthEvent) -> OutboxEntry | None:
        """The same, only if this call moves the game's runtime record ``running → disappeared`` (one CAS)."""
        ...

    def record_death(self, event: HealthEvent) -> OutboxEntry | None:
        """The same, only if this call moves the game's runtime record ``running → exited`` (one CAS)."""
        ...

    def record_revival(self, game_id: str, container_id: str) -> bool:
        """Move the record ``exited → running`` for this very container (one CAS); whether this call did.

        Docker brought back a container that was seen dead (a daemon restart
        starts ``always`` containers again).  No event: the game stays down until
        its recovery is observed.
        """
        ...

    def advance_recovery(
        self,
        game_id: str,
        down_seq: int,
        fold: Callable[[RecoveryEvidence], RecoveryEvidence],
        recovery: Callable[[RecoveryEvidence], HealthEvent | None],
    ) -> OutboxEntry | None:
        """Under the game's lock, while down period ``down_seq`` is still the current one:
        fold one observation into its evidence; when ``recovery`` makes an event of the
        evidence, record it (that ends the period).  ``None`` when nothing was recorded.
        """
        ...


class CurrentContainers(Protocol):
    def current_container_ids(self) -> set[str]:
        """Every game's ``current_container_id``, whatever the record's status."""
        ...


class OrphanReport(Protocol):
    def save(self, orphans: list[ListedContainer], *, suspects: list[str], now_ms: int) -> None:
        """Store the confirmed orphans, and the ids seen unclaimed this time (confirmed if seen again)."""
        ...

    def suspects(self) -> set[str]:
        """Container ids the previous reconcile saw unclaimed."""
        ...


class ProbeStateStore(Protocol):
    def get(self, game_id: str) -> ProbeState | None: ...

    def put(self, game_id: str, state: ProbeState) -> None: ...

    def prune(self, keep: list[str]) -> int: ...


class Prober(Protocol):
    def probe(self, endpoint: str) -> tuple[bool, str]: ...


class ContainerEventSource(Protocol):
    def read(self, *, since_nano: int, window_seconds: float) -> Iterable[ContainerEvent]:
        """Events from ``since_nano`` on, as they arrive, for about ``window_seconds``."""
        ...


class ListenerState(Protocol):
    def load(self) -> EventPosition | None:
        """``None`` when no listener ever saved a position."""
        ...

    def save(self, position: EventPosition) -> None: ...


class FollowUpTask(StrEnum):
    """What a follow-up asks for."""

    INSPECT = "inspect"
    """``rtmanager.inspect_container(game_id, container_id)``."""
    PROBE = "probe"
    """``rtmanager.probe_engine(game_id, container_id, endpoint)``."""
    RECONCILE = "reconcile"
    """``rtmanager.reconcile()``: relist Docker now."""


@dataclass(frozen=True)
class FollowUp:
    """One piece of work a sweep or the events listener asks the Docker host's workers for."""

    task: FollowUpTask
    args: tuple[str, ...] = ()
    down_seq: int = 0
    """The game's down period, when its recovery is in question (0: none)."""
    delay_seconds: float = 0.0
    """Run it no sooner than this."""
    expires_seconds: float | None = None
    """How long it stays worth running (``None``: until it runs)."""


class FollowUps(Protocol):
    """Hands follow-ups to this Docker host's workers (``rtmanager.docker[.<host>]``)."""

    def send(self, follow_up: FollowUp) -> None: ...
