"""The long-running singletons of the cluster and the keys of their leases.

The supervisor walks this registry; ``galaxy-tasks status`` shows it.  A new
singleton (the job-stream bridges, the Docker events listener) is one more
entry here and one task.
"""

from __future__ import annotations

from dataclasses import dataclass

from galaxy_tasks.adapters.redis.bridge_state import BridgeKeys
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


REGISTRY: tuple[LongRunning, ...] = (
    LongRunning("gamemaster.health_events_bridge", TaskName.GM_HEALTH_EVENTS_BRIDGE, HEALTH_EVENTS_BRIDGE_KEYS.lease),
    LongRunning("rtmanager.docker_events_listener", TaskName.RTM_DOCKER_EVENTS_LISTENER, DOCKER_EVENTS_LEASE_KEY),
    LongRunning("rtmanager.start_jobs_bridge", TaskName.RTM_START_JOBS_BRIDGE, START_JOBS_BRIDGE_KEYS.lease),
    LongRunning("rtmanager.stop_jobs_bridge", TaskName.RTM_STOP_JOBS_BRIDGE, STOP_JOBS_BRIDGE_KEYS.lease),
)


def launch_marker_key(name: str) -> str:
    """Set while a launch is in flight, so the supervisor does not queue a pile of them."""
    return f"galaxy:supervisor:launching:{name}"
