"""What the long-running tasks share: their Celery options and when to stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from galaxy_tasks.celery_app import shutdown_requested

LONG_RUNNING_OPTIONS: dict[str, Any] = {
    "acks_late": False,
    "reject_on_worker_lost": False,
    "autoretry_for": (),
    "time_limit": None,
    "soft_time_limit": None,
}
"""Acked on receipt, never retried, no time limit: the lease, not redelivery, keeps a singleton alive."""


def stop_condition(max_seconds: float | None) -> Callable[[], bool]:
    """Stop on worker shutdown, or after ``max_seconds`` (tests, ad-hoc catch-ups)."""
    deadline = None if max_seconds is None else time.monotonic() + max_seconds

    def should_stop() -> bool:
        return shutdown_requested.is_set() or (deadline is not None and time.monotonic() > deadline)

    return should_stop
