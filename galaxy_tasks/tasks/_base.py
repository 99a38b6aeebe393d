"""The one decorator every galaxy_tasks task goes through (Sentry's ``instrumented_task`` idea), and what
the long-running tasks add to it (their options, when to stop).

It fixes the explicit stable name, binds the task, and declares the retry
policy once: retry ``TransientError`` (a backend that may come back, a lock
or statement timeout) and the soft time limit with exponential backoff and
jitter, forever; never retry anything else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval

from galaxy_tasks.celery_app import app, shutdown_requested
from galaxy_tasks.config import get_settings
from galaxy_tasks.domain.errors import TransientError
from galaxy_tasks.task_names import TaskName

F = TypeVar("F", bound=Callable[..., Any])

RETRY_BACKOFF_MAX_SECONDS = 10


def galaxy_task(name: TaskName, **options: Any) -> Callable[[F], Any]:
    """Register a task; ``options`` override the defaults (``time_limit=None`` exempts it from the limits).

    Every pool task gets the soft and hard time limits of the settings, both
    under the broker's visibility timeout (``Settings.validate``), so a task
    still running is never redelivered to a second worker.
    """
    limits = get_settings()
    settings: dict[str, Any] = {
        "soft_time_limit": limits.task_soft_time_limit_seconds,
        "time_limit": limits.task_time_limit_seconds,
        "name": name.value,
        "bind": True,
        "autoretry_for": (TransientError, SoftTimeLimitExceeded),
        "retry_backoff": True,
        # A retry waits in the worker, unacknowledged, until its countdown: keep that well under the
        # visibility timeout, or the Redis broker hands the same message to a second worker meanwhile.
        "retry_backoff_max": min(RETRY_BACKOFF_MAX_SECONDS, limits.broker_visibility_timeout_seconds // 3),
        "retry_jitter": True,
        "max_retries": None,
    }
    settings.update(options)
    decorator: Callable[[F], Any] = app.task(**settings)
    return decorator


def retry_later(task: Task, args: list[Any], exc: Exception) -> NoReturn:
    """Retry ``task`` with other arguments (what is left of its work), on the decorator's backoff."""
    countdown = get_exponential_backoff_interval(
        factor=1, retries=task.request.retries, maximum=task.retry_backoff_max, full_jitter=True
    )
    raise task.retry(args=args, exc=exc, countdown=countdown, max_retries=None)


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
