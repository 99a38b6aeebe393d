"""The long-running singletons of the cluster and the keys of their leases.

The supervisor walks this registry; ``galaxy-tasks status`` shows it.  A new
singleton (the job-stream bridges, the Docker events listener) is one more
entry here and one task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from galaxy_tasks.adapters.redis.bridge_state import BridgeKeys
from galaxy_tasks.queues import Queue, on_docker_host
from galaxy_tasks.task_names import TaskName

HEALTH_EVENTS_STREAM = "runtime:health_events"
HEALTH_EVENTS_BRIDGE_KEYS = BridgeKeys.for_stream("gamemaster", "health_events")
DOCKER_EVENTS_LEASE_KEY = "rtmanager:docker_events:lease"
START_JOBS_STREAM = "runtime:start_jobs"
STOP_JOBS_STREAM = "runtime:stop_jobs"
START_JOBS_BRIDGE_KEYS = BridgeKeys.for_stream("rtmanager", "start_jobs")
STOP_JOBS_BRIDGE_KEYS = BridgeKeys.for_stream("rtmanager", "stop_jobs")


@dataclass(frozen=True)
class LongRunning:
    name: str
    task_name: str
    lease_key: str
    queue: str = Queue.LONG_RUNNING.value
    """Where its launch goes: the shared long-running queue, or a Docker host's own."""


def docker_events_lease_key(host: str) -> str:
    return f"{DOCKER_EVENTS_LEASE_KEY}:{host}" if host else DOCKER_EVENTS_LEASE_KEY


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


def launch_marker_key(name: str) -> str:
    """Set while a launch is in flight, so the supervisor does not queue a pile of them."""
    return f"galaxy:supervisor:launching:{name}"
