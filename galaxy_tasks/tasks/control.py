"""Control tasks: the supervisor of the long-running singletons."""

from __future__ import annotations

from typing import Any

from celery import Task

from galaxy_tasks.adapters.redis.lease import RedisLeaseView
from galaxy_tasks.bootstrap import resources
from galaxy_tasks.celery_app import app
from galaxy_tasks.long_running import registry
from galaxy_tasks.service.supervisor import supervise
from galaxy_tasks.task_names import TaskName
from galaxy_tasks.tasks._base import galaxy_task


@galaxy_task(TaskName.SUPERVISE_LONG_RUNNING, acks_late=True)
def supervise_long_running(self: Task) -> dict[str, Any]:
    """Start every long-running singleton nobody holds the lease of (beat-scheduled, idempotent)."""
    res = resources()
    s = res.settings
    launch_ttl = max(s.lease_ttl_seconds, 2 * s.supervisor_interval_seconds)

    def launch(task_name: str, ttl: float, queue: str) -> None:
        app.send_task(task_name, expires=ttl, queue=queue)

    singletons = registry(s.docker_host_names())
    return supervise(singletons, RedisLeaseView(res.redis, s.redis_url), launch, launch_ttl_seconds=launch_ttl)
