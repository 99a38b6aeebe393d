"""Docker container events as the Runtime Manager reads them: what each means, and where it stands.

A listener that restarts (or loses its connection) asks Docker again from the
position it saved — a little before the newest ``timeNano`` it handled, with
the keys of the events it handled since — so an event Docker kept is neither
missed nor handled twice, even one Docker delivered after a later one.
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


LATE_EVENT_NANOS = 2_000_000_000
"""How late an event may arrive after a later one and still be handled.

Docker does not deliver events strictly in ``timeNano`` order (events of
different containers come from different goroutines: a few nanoseconds apart
they may swap).  The position therefore keeps the keys of the events handled
in the last two seconds and resumes two seconds early, instead of dropping
anything older than the newest event handled.
"""


@dataclass(frozen=True)
class EventPosition:
    time_nano: int = 0
    """The newest ``timeNano`` handled."""
    keys: frozenset[str] = field(default_factory=frozenset)
    """Keys of the events handled at or after :attr:`since_nano`."""
    since_nano: int | None = None
    """Events before this are taken as handled (``None``: ``time_nano``, as a first start at "now")."""

    @property
    def floor(self) -> int:
        return self.time_nano if self.since_nano is None else self.since_nano

    def is_new(self, event: ContainerEvent) -> bool:
        return event.time_nano >= self.floor and event.key not in self.keys

    def after(self, event: ContainerEvent) -> EventPosition:
        newest = max(self.time_nano, event.time_nano)
        floor = max(self.floor, newest - LATE_EVENT_NANOS)
        keys = frozenset(k for k in (*self.keys, event.key) if _time_of(k) >= floor)
        return EventPosition(newest, keys, floor)


def _time_of(key: str) -> int:
    return int(key.rsplit(":", 1)[1])


class Reaction(StrEnum):
    EXITED = "exited"
    """``die``: ``container_exited``, or ``container_oom`` if the kernel OOM-killed it."""
    OOM = "oom"
    """``oom``: ``container_oom`` once the container is dead (whichever of ``oom``/``die`` comes last)."""
    DESTROYED = "destroyed"
    """``destroy``: ``container_disappeared`` if it was a running record's current container."""
    UNHEALTHY = "unhealthy"
    """``health_status: unhealthy``: inspect that game now."""
    STARTED = "started"
    """``start``: an ``exited`` record whose very container Docker runs again goes back to ``running`` (no event:
    the game stays down until its recovery is observed), so that its next death is reported."""
    IGNORED = "ignored"


def reaction_to(action: str) -> Reaction:
    if action == "die":
        return Reaction.EXITED
    if action == "oom":
        return Reaction.OOM
    if action == "destroy":
        return Reaction.DESTROYED
    if action == "start":
        return Reaction.STARTED
    if action.startswith("health_status") and action.endswith("unhealthy"):
        return Reaction.UNHEALTHY
    return Reaction.IGNORED
