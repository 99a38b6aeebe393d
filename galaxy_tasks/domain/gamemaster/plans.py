"""What the Game Master does for each health event type (seed ``001`` ``planFor``).

A plan is the engine-health summary to record and, for the events that imply
the engine was lost or came back, the CAS transition to attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from galaxy_tasks.domain.gamemaster.statuses import ENGINE_LOST, ENGINE_RECOVERED, Transition
from galaxy_tasks.domain.health_events import HealthEventType


class Summary(StrEnum):
    """Engine-health summary strings written to ``runtime_records.engine_health``."""

    HEALTHY = "healthy"
    PROBE_FAILED = "probe_failed"
    INSPECT_UNHEALTHY = "inspect_unhealthy"
    EXITED = "exited"
    OOM = "oom"
    DISAPPEARED = "disappeared"


@dataclass(frozen=True)
class EventPlan:
    """The reaction to one event type: a summary, and maybe a CAS transition."""

    summary: Summary
    transition: Transition | None = None


_PLANS: dict[str, EventPlan] = {
    HealthEventType.CONTAINER_STARTED: EventPlan(Summary.HEALTHY),
    HealthEventType.PROBE_RECOVERED: EventPlan(Summary.HEALTHY, ENGINE_RECOVERED),
    HealthEventType.PROBE_FAILED: EventPlan(Summary.PROBE_FAILED),
    HealthEventType.INSPECT_UNHEALTHY: EventPlan(Summary.INSPECT_UNHEALTHY),
    HealthEventType.CONTAINER_EXITED: EventPlan(Summary.EXITED, ENGINE_LOST),
    HealthEventType.CONTAINER_OOM: EventPlan(Summary.OOM, ENGINE_LOST),
    HealthEventType.CONTAINER_DISAPPEARED: EventPlan(Summary.DISAPPEARED, ENGINE_LOST),
}


def plan_for(event_type: str) -> EventPlan | None:
    """The plan for ``event_type``, or ``None`` for a type this consumer does not know."""
    return _PLANS.get(event_type)


def should_publish(*, status_changed: bool, summary: str, last_published: str | None) -> bool:
    """The debounce rule: publish on a transition or on a summary the Lobby has not seen.

    ``last_published`` is ``None`` when nothing was ever published for the game.
    """
    if status_changed:
        return True
    return last_published != summary
