"""Runtime Manager tasks: the health-event outbox relay (more come with inspect, probe, listener, jobs)."""

from __future__ import annotations

from typing import Any

from celery import Task

from galaxy_tasks.bootstrap import resources
from galaxy_tasks.service.health_publisher import HEALTH_EVENT_OUTBOX_LABEL
from galaxy_tasks.service.outbox_relay import relay_pending
from galaxy_tasks.task_names import TaskName
from galaxy_tasks.tasks._base import galaxy_task


@galaxy_task(TaskName.RTM_RELAY_HEALTH_EVENTS, acks_late=True)
def relay_health_events(self: Task) -> dict[str, Any]:
    """Append committed health events still in the outbox to ``runtime:health_events`` (idempotent)."""
    res = resources()
    appended = relay_pending(
        res.health_events_outbox,
        label=HEALTH_EVENT_OUTBOX_LABEL,
        batch_games=res.settings.outbox_relay_batch_size,
        time_budget_seconds=max(res.settings.outbox_relay_interval_seconds, 1.0),
    )
    return {"appended": appended}


__all__ = ["relay_health_events"]
