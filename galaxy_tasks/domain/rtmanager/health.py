"""Health events of ``runtime:health_events`` and the ``health_snapshots`` row each one leaves.

The seven event types, the ``details`` each carries (SPEC §3) and the
snapshot status and source each maps to (seed ``000``'s ``snapshotMappingFor``:
``container_started`` and ``probe_recovered`` both collapse to ``healthy``).
An event is built through one constructor per type, so a ``details`` of the
wrong shape cannot be published; :func:`validate_event` says why a hand-made
one is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from galaxy_tasks.domain.errors import PermanentError
from galaxy_tasks.domain.health_events import HealthEventType


class SnapshotStatus(StrEnum):
    HEALTHY = "healthy"
    EXITED = "exited"
    OOM = "oom"
    CONTAINER_DISAPPEARED = "container_disappeared"
    INSPECT_UNHEALTHY = "inspect_unhealthy"
    PROBE_FAILED = "probe_failed"


class SnapshotSource(StrEnum):
    DOCKER_EVENT = "docker_event"
    INSPECT = "inspect"
    PROBE = "probe"


SNAPSHOT_MAPPING: Mapping[HealthEventType, tuple[SnapshotStatus, SnapshotSource]] = MappingProxyType(
    {
        HealthEventType.CONTAINER_STARTED: (SnapshotStatus.HEALTHY, SnapshotSource.DOCKER_EVENT),
        HealthEventType.CONTAINER_EXITED: (SnapshotStatus.EXITED, SnapshotSource.DOCKER_EVENT),
        HealthEventType.CONTAINER_OOM: (SnapshotStatus.OOM, SnapshotSource.DOCKER_EVENT),
        HealthEventType.CONTAINER_DISAPPEARED: (SnapshotStatus.CONTAINER_DISAPPEARED, SnapshotSource.DOCKER_EVENT),
        HealthEventType.INSPECT_UNHEALTHY: (SnapshotStatus.INSPECT_UNHEALTHY, SnapshotSource.INSPECT),
        HealthEventType.PROBE_FAILED: (SnapshotStatus.PROBE_FAILED, SnapshotSource.PROBE),
        HealthEventType.PROBE_RECOVERED: (SnapshotStatus.HEALTHY, SnapshotSource.PROBE),
    }
)
"""Event type → (snapshot status, snapshot source), as seed ``000`` maps them."""

# details keys per type: required (name → type); container_disappeared may carry an optional reason.
_REQUIRED_DETAILS: Mapping[HealthEventType, Mapping[str, type]] = MappingProxyType(
    {
        HealthEventType.CONTAINER_STARTED: {"image_ref": str},
        HealthEventType.CONTAINER_EXITED: {"exit_code": int},
        HealthEventType.CONTAINER_OOM: {"exit_code": int},
        HealthEventType.CONTAINER_DISAPPEARED: {},
        HealthEventType.INSPECT_UNHEALTHY: {"restart_count": int, "state": str, "health": str},
        HealthEventType.PROBE_FAILED: {"consecutive_failures": int, "last_error": str},
        HealthEventType.PROBE_RECOVERED: {"prior_failures": int},
    }
)
_OPTIONAL_DETAILS: Mapping[HealthEventType, Mapping[str, type]] = MappingProxyType(
    {HealthEventType.CONTAINER_DISAPPEARED: {"reason": str}}
)


class InvalidHealthEvent(PermanentError):
    """An event that must not be published: a bug in its producer, not a passing condition."""


@dataclass(frozen=True)
class HealthSnapshot:
    """The latest observation of a game (``rtmanager.health_snapshots``)."""

    game_id: str
    container_id: str
    status: SnapshotStatus
    source: SnapshotSource
    details: Mapping[str, Any]
    observed_at_ms: int


@dataclass(frozen=True)
class HealthEvent:
    """One ``runtime:health_events`` entry before it is published."""

    game_id: str
    container_id: str
    event_type: HealthEventType
    occurred_at_ms: int
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_fields(self) -> dict[str, str]:
        """The stream entry's fields (SPEC §3): every value a string, ``details`` as compact JSON."""
        return {
            "game_id": self.game_id,
            "container_id": self.container_id,
            "event_type": self.event_type.value,
            "occurred_at_ms": str(self.occurred_at_ms),
            "details": json.dumps(dict(self.details), separators=(",", ":"), sort_keys=True),
        }

    def snapshot(self) -> HealthSnapshot:
        status, source = SNAPSHOT_MAPPING[self.event_type]
        return HealthSnapshot(self.game_id, self.container_id, status, source, self.details, self.occurred_at_ms)

    # --- one constructor per type: the only shapes that can be published ---------------------
    @classmethod
    def container_started(cls, game_id: str, container_id: str, at_ms: int, *, image_ref: str) -> HealthEvent:
        return cls._made(game_id, container_id, HealthEventType.CONTAINER_STARTED, at_ms, image_ref=image_ref)

    @classmethod
    def container_exited(cls, game_id: str, container_id: str, at_ms: int, *, exit_code: int) -> HealthEvent:
        return cls._made(game_id, container_id, HealthEventType.CONTAINER_EXITED, at_ms, exit_code=exit_code)

    @classmethod
    def container_oom(cls, game_id: str, container_id: str, at_ms: int, *, exit_code: int) -> HealthEvent:
        return cls._made(game_id, container_id, HealthEventType.CONTAINER_OOM, at_ms, exit_code=exit_code)

    @classmethod
    def container_disappeared(
        cls, game_id: str, container_id: str, at_ms: int, *, reason: str | None = None
    ) -> HealthEvent:
        details = {} if reason is None else {"reason": reason}
        return cls._made(game_id, container_id, HealthEventType.CONTAINER_DISAPPEARED, at_ms, **details)

    @classmethod
    def inspect_unhealthy(
        cls, game_id: str, container_id: str, at_ms: int, *, restart_count: int, state: str, health: str
    ) -> HealthEvent:
        return cls._made(
            game_id,
            container_id,
            HealthEventType.INSPECT_UNHEALTHY,
            at_ms,
            restart_count=restart_count,
            state=state,
            health=health,
        )

    @classmethod
    def probe_failed(
        cls, game_id: str, container_id: str, at_ms: int, *, consecutive_failures: int, last_error: str
    ) -> HealthEvent:
        return cls._made(
            game_id,
            container_id,
            HealthEventType.PROBE_FAILED,
            at_ms,
            consecutive_failures=consecutive_failures,
            last_error=last_error,
        )

    @classmethod
    def probe_recovered(cls, game_id: str, container_id: str, at_ms: int, *, prior_failures: int) -> HealthEvent:
        return cls._made(game_id, container_id, HealthEventType.PROBE_RECOVERED, at_ms, prior_failures=prior_failures)

    @classmethod
    def _made(
        cls, game_id: str, container_id: str, event_type: HealthEventType, at_ms: int, **details: Any
    ) -> HealthEvent:
        event = cls(game_id, container_id, event_type, at_ms, MappingProxyType(details))
        validate_event(event)
        return event


def validate_event(event: HealthEvent) -> None:
    """Refuse what the contract forbids (SPEC §3), saying which field is wrong."""
    where = f"{event.event_type} of game {event.game_id!r}"
    if not event.game_id.strip():
        raise InvalidHealthEvent(f"{where}: game_id must not be empty")
    if not event.container_id and event.event_type is not HealthEventType.CONTAINER_DISAPPEARED:
        raise InvalidHealthEvent(f"{where}: container_id may be empty only for container_disappeared")
    if event.occurred_at_ms <= 0:
        raise InvalidHealthEvent(f"{where}: occurred_at_ms must be > 0, got {event.occurred_at_ms}")
    required = _REQUIRED_DETAILS[event.event_type]
    optional = _OPTIONAL_DETAILS.get(event.event_type, {})
    unknown = set(event.details) - set(required) - set(optional)
    if unknown:
        raise InvalidHealthEvent(f"{where}: unexpected details {sorted(unknown)}")
    for name in required:
        if name not in event.details:
            raise InvalidHealthEvent(f"{where}: details.{name} is required")
    for name, kind in {**required, **optional}.items():
        if name in event.details and not _is(event.details[name], kind):
            raise InvalidHealthEvent(f"{where}: details.{name} must be {kind.__name__}, got {event.details[name]!r}")


def _is(value: object, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)
