"""Docker container events as the Runtime Manager reads them: what each means, and where it stands.

A listener that restarts (or loses its connection) asks Docker again from the
position it saved — the ``timeNano`` of the last event it handled, with the
keys of the events it handled at that very nanosecond — so an event Docker
kept is neither missed nor handled twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class ContainerEvent:
    container_id: str
    game_id: str
    action: str
    """Docker's ``Action``: ``die``, ``oom``, ``destroy``, ``health_status: unhealthy`` …"""
    time_nano: int
    exit_code: int | None = None
    """The ``exitCode`` attribute of a ``die``."""

    @property
    def key(self) -> str:
        """Docker's own identity of an event: container, action, time."""
        return f"{self.container_id}:{self.action}:{self.time_nano}"

    @property
    def occurred_at_ms(self) -> int:
        return self.time_nano // 1_000_000


@dataclass(frozen=True)
class EventPosition:
    time_nano: int = 0
    keys: frozenset[str] = field(default_factory=frozenset)
    """Events already handled at exactly ``time_nano``."""

    def is_new(self, event: ContainerEvent) -> bool:
        return event.time_nano > self.time_nano or (event.time_nano == self.time_nano and event.key not in self.keys)

    def after(self, event: ContainerEvent) -> EventPosition:
        if event.time_nano > self.time_nano:
            return EventPosition(event.time_nano, frozenset({event.key}))
        if event.time_nano == self.time_nano:
            return EventPosition(self.time_nano, self.keys | {event.key})
        return self


class Reaction(StrEnum):
    EXITED = "exited"
    """``die``: ``container_exited``, or ``container_oom`` if the kernel OOM-killed it."""
    OOM = "oom"
    """``oom``: ``container_oom`` once the container is dead (whichever of ``oom``/``die`` comes last)."""
    DESTROYED = "destroyed"
    """``destroy``: ``container_disappeared`` if it was a running record's current container."""
    UNHEALTHY = "unhealthy"
    """``health_status: unhealthy``: inspect that game now."""
    IGNORED = "ignored"


def reaction_to(action: str) -> Reaction:
    if action == "die":
        return Reaction.EXITED
    if action == "oom":
        return Reaction.OOM
    if action == "destroy":
        return Reaction.DESTROYED
    if action.startswith("health_status") and action.endswith("unhealthy"):
        return Reaction.UNHEALTHY
    return Reaction.IGNORED
