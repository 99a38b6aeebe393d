"""Every Celery queue of galaxy_tasks, in one place (PostHog's ``CeleryQueue`` idea).

Queues separate work with different needs: long-running singletons must never
take a pool slot of the per-event work, and the periodic control tasks must not
queue behind a backlog of events.
"""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    LONG_RUNNING = "galaxy.long_running"
    """Bridges and listeners: consumed only by the thread-pool worker started with ``-P threads``."""

    PERIODIC = "galaxy.periodic"
    """Supervisor, outbox relays, order repair: short, frequent, never behind a backlog; no Docker needed.

    Consumed beside the singletons by the long-running worker, which takes no work on games: a
    backlog of events, slow jobs or a row lock holding every pool slot cannot keep them waiting.
    """

    GM_HEALTH_EVENTS = "gamemaster.health_events"
    """One CAS task per ``runtime:health_events`` entry, or one chunk of them in backlog mode."""

    RTM_DOCKER = "rtmanager.docker"
    """Tasks that talk to the Docker Engine of the games' containers: the sweeps, per-container inspect, probe.

    Only workers that see that Docker host consume it (``rtmanager.docker.<host>`` with several).
    """

    RTM_JOBS = "rtmanager.jobs"
    """Start/stop jobs: seconds each (a container stop waits for the engine), kept off the sweeps' queue."""


POOL_QUEUES: tuple[Queue, ...] = (Queue.GM_HEALTH_EVENTS, Queue.RTM_DOCKER, Queue.RTM_JOBS)
"""Queues the prefork pool workers consume: the work on games."""

LONG_RUNNING_QUEUES: tuple[Queue, ...] = (Queue.LONG_RUNNING, Queue.PERIODIC)
"""Queues the long-running (thread-pool) worker consumes: the singletons and the control tasks."""


HOST_BOUND: tuple[Queue, ...] = (Queue.RTM_DOCKER, Queue.RTM_JOBS, Queue.LONG_RUNNING)
"""Queues that exist once per Docker host when there are several (``GALAXY_DOCKER_HOSTS``)."""


def on_docker_host(queue: Queue, host: str) -> str:
    """The queue of ``host`` (``rtmanager.docker.dh1``); the plain queue with a single Docker host."""
    if not host:
        return queue.value
    if queue not in HOST_BOUND:
        raise ValueError(f"{queue.value} is not bound to a Docker host")
    return f"{queue.value}.{host}"
