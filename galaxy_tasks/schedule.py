"""The whole beat schedule in one place; every entry expires so an outage cannot pile it up."""

from __future__ import annotations

from typing import Any

from galaxy_tasks.config import Settings
from galaxy_tasks.queues import Queue, on_docker_host
from galaxy_tasks.task_names import TaskName


def _host_sweeps(settings: Settings, host: str) -> dict[str, dict[str, Any]]:
    """The sweeps of one Docker host: each runs on that host's RTM worker (its queue), which sees its Docker."""
    suffix = f"@{host}" if host else ""
    sweeps = (
        ("inspect-sweep", TaskName.RTM_INSPECT_SWEEP, settings.inspect_interval_seconds),
        ("probe-sweep", TaskName.RTM_PROBE_SWEEP, settings.probe_interval_seconds),
        ("reconcile", TaskName.RTM_RECONCILE, settings.reconcile_interval_seconds),
    )
    entries: dict[str, dict[str, Any]] = {}
    for name, task, interval in sweeps:
        options: dict[str, Any] = {"expires": interval}
        if host:
            options["queue"] = on_docker_host(Queue.RTM_DOCKER, host)
        entries[f"{name}{suffix}"] = {"task": task.value, "schedule": interval, "options": options}
    return entries


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    supervise = settings.supervisor_interval_seconds
    relay = settings.outbox_relay_interval_seconds
    repair = settings.order_repair_interval_seconds
    schedule: dict[str, dict[str, Any]] = {
        "supervise-long-running": {
            "task": TaskName.SUPERVISE_LONG_RUNNING.value,
            "schedule": supervise,
            "options": {"expires": supervise},
        },
        "relay-lobby-outbox": {
            "task": TaskName.GM_RELAY_LOBBY_EVENTS.value,
            "schedule": relay,
            "options": {"expires": relay},
        },
        "relay-health-event-outbox": {
            "task": TaskName.RTM_RELAY_HEALTH_EVENTS.value,
            "schedule": relay,
            "options": {"expires": relay},
        },
        "relay-job-result-outbox": {
            "task": TaskName.RTM_RELAY_JOB_RESULTS.value,
            "schedule": relay,
            "options": {"expires": relay},
        },
        "repair-health-event-order": {
            "task": TaskName.GM_REPAIR_HEALTH_EVENT_ORDER.value,
            "schedule": repair,
            "options": {"expires": repair},
        },
    }
    for host in settings.docker_host_names() or [""]:
        schedule.update(_host_sweeps(settings, host))
    return schedule
