"""The event types of ``runtime:health_events``: the contract between the RTM and the GM (SPEC §3).

The Runtime Manager produces them (``domain/rtmanager/health.py``) and the
Game Master plans its reaction to each (``domain/gamemaster/plans.py``); both
name them from here, so the two sides cannot drift apart.
"""

from __future__ import annotations

from enum import StrEnum

HEALTH_EVENT_FIELDS = frozenset({"game_id", "container_id", "event_type", "occurred_at_ms", "details"})
"""The fields SPEC §3 lists for ``runtime:health_events``: they must be UTF-8 text; others are ignored."""


class HealthEventType(StrEnum):
    """The seven ``event_type`` values of ``runtime:health_events`` (SPEC §3, fixed)."""

    CONTAINER_STARTED = "container_started"
    CONTAINER_EXITED = "container_exited"
    CONTAINER_OOM = "container_oom"
    CONTAINER_DISAPPEARED = "container_disappeared"
    INSPECT_UNHEALTHY = "inspect_unhealthy"
    PROBE_FAILED = "probe_failed"
    PROBE_RECOVERED = "probe_recovered"
