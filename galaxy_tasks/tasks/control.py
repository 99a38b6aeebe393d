"""Control tasks: the supervisor of the long-running singletons."""

from __future__ import annotations

from typing import Any

from celery import Task

from galaxy_tasks.bootstrap import resources
from galaxy_tasks.task_names import TaskName
from galaxy_tasks.tasks._base import galaxy_task


@galaxy_task(TaskName.SUPERVISE_LONG_RUNNING, acks_late=True)
def supervise_long_running(self: Task) -> dict[str, Any]:
    """Start every long-running singleton nobody holds the lease of (beat-scheduled, idempotent)."""
    return dict(resources().supervise())
