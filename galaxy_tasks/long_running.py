"""The long-running singletons of the cluster (their lease keys are the contract's).

The supervisor walks this registry; ``galaxy-tasks status`` shows it.  A new
singleton (the job-stream bridges, the Docker events listener) is one more
entry here and one task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from galaxy_tasks.contract import (
    HEALTH_EVENTS_BRIDGE_KEYS,
    START_JOBS_BRIDGE_KEYS,
    STOP_JOBS_BRIDGE_KEYS,
    docker_events_lease_key,
)
from galaxy_tasks.queues import Queue, on_docker_host
from galaxy_tasks.task_names import TaskName


@dataclass(frozen=True)
class LongRunning:
    name: str
    task_name: str
    lease_key: str
    queue: str = Queue.LONG_RUNNING.value
    """Where its launch goes: the shared long-running queue, or a Docker host's own."""


def registry(docker_hosts: Sequence[str] = ()) -> tuple[LongRunning, ...]:
    """The singletons of a cluster: the bridges once, the Docker events listener once per Docker host."""
    listener = TaskName.RTM_DOCKER_EVENTS_LISTENER
    listeners = [
        LongRunning(
            f"rtmanager.docker_events_listener@{host}" if host else "rtmanager.docker_events_listener",
            listener,
            docker_events_lease_key(host),
            on_docker_host(Queue.LONG_RUNNING, host),
        )
        for host in (docker_hosts or [""])
    ]
    return (
        LongRunning(
            "gamemaster.health_events_bridge", TaskName.GM_HEALTH_EVENTS_BRIDGE, HEALTH_EVENTS_BRIDGE_KEYS.lease
        ),
        *listeners,
        LongRunning("rtmanager.start_jobs_bridge", TaskName.RTM_START_JOBS_BRIDGE, START_JOBS_BRIDGE_KEYS.lease),
        LongRunning("rtmanager.stop_jobs_bridge", TaskName.RTM_STOP_JOBS_BRIDGE, STOP_JOBS_BRIDGE_KEYS.lease),
    )


REGISTRY: tuple[LongRunning, ...] = registry()
"""The singletons with a single Docker host."""
