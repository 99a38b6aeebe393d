"""The whole beat schedule in one place; every entry expires so an outage cannot pile it up.

Control work (supervisor, outbox relays, order repair) goes to ``galaxy.periodic``, which any
worker on any host may serve; the sweeps talk to a Docker Engine, so each goes to the
Docker-bound queue of its host (``tests/e2e/test_deploy_layout_reaches_docker.py`` checks every
documented process layout serves them there).
"""

from __future__ import annotations

from typing import Any

from galaxy_tasks.config import Settings
from galaxy_tasks.queues import Queue, on_docker_host
from galaxy_tasks.task_names import TaskName

MIN_EXPIRY_SECONDS = 10.0
EXPIRY_INTERVALS = 3


def expiry_for(interval: float) -> float:
    """How long a periodic message stays worth running: several intervals, never under 10 s.

    ``expires`` is judged against the *sender's* clock by the worker's: with an
    expiry of one interval (a relay's 1 s), a second of clock skew or of queueing
    silently drops every message.  Late copies are harmless — each periodic task
    is idempotent — while a silenced relay or supervisor is not.
    """
    return max(MIN_EXPIRY_SECONDS, EXPIRY_INTERVALS * interval)


def _every(task: TaskName, interval: float, queue: str = "") -> dict[str, Any]:
    """A periodic entry (to a given queue, or the task's route) that expires after :func:`expiry_for`."""
    options: dict[str, Any] = {"expires": expiry_for(interval), **({"queue": queue} if queue else {})}
    return {"task": task.value, "schedule": interval, "options": options}


def _host_sweeps(settings: Settings, host: str) -> dict[str, dict[str, Any]]:
    """The sweeps of one Docker host, on its Docker-bound queue (``rtmanager.docker[.<host>]``).

    They list that host's Docker, so only a worker that sees it may run them: its RTM worker.
    With a single Docker host too — ``galaxy.periodic``'s workers may have no Docker at all.
    """
    suffix = f"@{host}" if host else ""
    queue = on_docker_host(Queue.RTM_DOCKER, host)
    return {
        f"inspect-sweep{suffix}": _every(TaskName.RTM_INSPECT_SWEEP, settings.inspect_interval_seconds, queue),
        f"probe-sweep{suffix}": _every(TaskName.RTM_PROBE_SWEEP, settings.probe_interval_seconds, queue),
        f"reconcile{suffix}": _every(TaskName.RTM_RECONCILE, settings.reconcile_interval_seconds, queue),
        f"repair-jobs{suffix}": _every(TaskName.RTM_REPAIR_JOBS, settings.job_repair_interval_seconds, queue),
    }


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    relay = settings.outbox_relay_interval_seconds
    schedule = {
        "supervise-long-running": _every(TaskName.SUPERVISE_LONG_RUNNING, settings.supervisor_interval_seconds),
        "relay-lobby-outbox": _every(TaskName.GM_RELAY_LOBBY_EVENTS, relay),
        "relay-health-event-outbox": _every(TaskName.RTM_RELAY_HEALTH_EVENTS, relay),
        "relay-job-result-outbox": _every(TaskName.RTM_RELAY_JOB_RESULTS, relay),
        "repair-health-event-order": _every(
            TaskName.GM_REPAIR_HEALTH_EVENT_ORDER, settings.order_repair_interval_seconds
        ),
    }
    for host in settings.docker_host_names() or [""]:
        schedule.update(_host_sweeps(settings, host))
    return schedule
