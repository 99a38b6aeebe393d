"""Runtime Manager health tasks: the health-event outbox relay, the Docker inspect sweep, the probes,
the reconciler and the Docker events listener.

Each body is one call into ``resources().rtmanager`` (``bootstrap/rtmanager.py``).
"""

from __future__ import annotations

from typing import Any

from celery import Task

from galaxy_tasks.bootstrap import resources
from galaxy_tasks.task_names import TaskName
from galaxy_tasks.tasks._base import LONG_RUNNING_OPTIONS, galaxy_task, stop_condition

NO_RETRY: tuple[type[BaseException], ...] = ()
"""Sweeps and their per-container tasks are not retried: the next beat tick does the work again."""


@galaxy_task(TaskName.RTM_RELAY_HEALTH_EVENTS, acks_late=True)
def relay_health_events(self: Task) -> dict[str, Any]:
    """Append committed health events still in the outbox to ``runtime:health_events`` (idempotent)."""
    return {"appended": resources().rtmanager.relay_health_events()}


@galaxy_task(TaskName.RTM_INSPECT_SWEEP, acks_late=True, autoretry_for=NO_RETRY)
def inspect_sweep(self: Task) -> dict[str, Any]:
    """List the managed containers once and send an inspect task for each one the list cannot vouch for."""
    return resources().rtmanager.inspect_sweep().as_dict()


@galaxy_task(TaskName.RTM_INSPECT_CONTAINER, acks_late=True, autoretry_for=NO_RETRY)
def inspect_container(self: Task, game_id: str, container_id: str, down_seq: int = 0) -> dict[str, Any]:
    """Inspect one game's container (seed ``003``): a death for good, ``inspect_unhealthy`` once per change,
    and (``down_seq``: the game's down period when the sweep asked) evidence of its recovery."""
    return resources().rtmanager.inspect_container(game_id, container_id, down_seq)


@galaxy_task(TaskName.RTM_PROBE_SWEEP, acks_late=True, autoretry_for=NO_RETRY)
def probe_sweep(self: Task) -> dict[str, Any]:
    """Send a probe task for every running engine past its start-up grace, spread over the interval."""
    return resources().rtmanager.probe_sweep().as_dict()


@galaxy_task(TaskName.RTM_PROBE_ENGINE, acks_late=True, autoretry_for=NO_RETRY)
def probe_engine(self: Task, game_id: str, container_id: str, endpoint: str, down_seq: int = 0) -> dict[str, Any]:
    """Probe one engine's health endpoint: ``probe_failed`` at the threshold; while the game is down
    (``down_seq``), evidence of its recovery, which ends in ``probe_recovered``."""
    return resources().rtmanager.probe_engine(game_id, container_id, endpoint, down_seq)


@galaxy_task(TaskName.RTM_RECONCILE, acks_late=True, autoretry_for=NO_RETRY)
def reconcile(self: Task) -> dict[str, Any]:
    """Relist: report running records whose container is gone or dead for good (once each), and orphans."""
    return resources().rtmanager.reconcile().as_dict()


@galaxy_task(TaskName.RTM_DOCKER_EVENTS_LISTENER, **LONG_RUNNING_OPTIONS)
def docker_events_listener(self: Task, max_seconds: float | None = None) -> dict[str, Any]:
    """Follow the managed containers' Docker events until shutdown or lease loss (long-running).

    Belongs on the long-running queue; acked on receipt (the lease, not redelivery,
    keeps it alive); the supervisor starts one whenever nobody holds the lease.
    """
    return resources().rtmanager.docker_events_listener().run(stop_condition(max_seconds)).as_dict()


__all__ = [
    "docker_events_listener",
    "inspect_container",
    "inspect_sweep",
    "probe_engine",
    "probe_sweep",
    "reconcile",
    "relay_health_events",
]
