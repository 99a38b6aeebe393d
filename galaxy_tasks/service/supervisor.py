"""Keeps every long-running singleton alive: launch one wherever nobody holds its lease.

Run by beat every ``GALAXY_SUPERVISOR_INTERVAL_SECONDS``.  A launch marker
with a short expiry stops it queuing a launch per tick while one is on its
way; the launch message itself expires, so a missing long-running worker
cannot pile them up.  Duplicate launches are harmless: the loser of the lease
returns at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from galaxy_tasks.contract import launch_marker_key
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.streams import LeaseView, Singleton

log = get_logger(__name__)


def supervise(
    singletons: Sequence[Singleton],
    leases: LeaseView,
    launch: Callable[[str, float, str], None],
    *,
    launch_ttl_seconds: float,
) -> dict[str, str]:
    """Launch what is not running; return each singleton's state for the task result."""
    states: dict[str, str] = {}
    for singleton in singletons:
        holder = leases.holder_of(singleton.lease_key)
        if holder is not None:
            states[singleton.name] = f"held by {holder}"
        elif leases.claim_launch(launch_marker_key(singleton.name), launch_ttl_seconds):
            launch(singleton.task_name, launch_ttl_seconds, singleton.queue)
            log.info("long_running_launched", name=singleton.name, task=singleton.task_name)
            states[singleton.name] = "launched"
        else:
            states[singleton.name] = "launch pending"
    return states
