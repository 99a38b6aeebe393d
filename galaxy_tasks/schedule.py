"""The whole beat schedule in one place; every entry expires so an outage cannot pile it up."""

from __future__ import annotations

from typing import Any

from galaxy_tasks.config import Settings
from galaxy_tasks.task_names import TaskName


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    supervise = settings.supervisor_interval_seconds
    relay = settings.outbox_relay_interval_seconds
    repair = settings.order_repair_interval_seconds
    return {
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
        "inspect-sweep": {
            "task": TaskName.RTM_INSPECT_SWEEP.value,
            "schedule": settings.inspect_interval_seconds,
            "options": {"expires": settings.inspect_interval_seconds},
        },
        "probe-sweep": {
            "task": TaskName.RTM_PROBE_SWEEP.value,
            "schedule": settings.probe_interval_seconds,
            "options": {"expires": settings.probe_interval_seconds},
        },
        "reconcile": {
            "task": TaskName.RTM_RECONCILE.value,
            "schedule": settings.reconcile_interval_seconds,
            "options": {"expires": settings.reconcile_interval_seconds},
        },
        "repair-health-event-order": {
            "task": TaskName.GM_REPAIR_HEALTH_EVENT_ORDER.value,
            "schedule": repair,
            "options": {"expires": repair},
        },
    }
