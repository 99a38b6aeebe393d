"""Scenario (d): a task that does nothing, to measure the floor of per-task overhead.

Registered on the ``galaxy_tasks`` app, so it runs with the same broker,
serializer, acks-late, task-event and prefetch settings as
``gamemaster.apply_health_event``, and takes the same arguments (the bench
sends it the handoffs the bridge would send).  The bench starts its pool
worker with ``--include bench.noop_tasks``; the task lands on the default
queue, which the pool worker consumes.
"""

from __future__ import annotations

from typing import Any

from galaxy_tasks.celery_app import app

NOOP_TASK = "bench.noop"


def _noop(entry_id: str, fields: dict[str, str], prev_entry_id: str | None = None) -> None:
    """Do nothing with a health entry handoff."""


noop: Any = app.task(name=NOOP_TASK)(_noop)
