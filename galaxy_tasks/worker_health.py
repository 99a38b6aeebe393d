"""Worker liveness and readiness as files, for container and process supervisors.

With ``GALAXY_HEALTH_DIR`` set, a worker keeps two files there:

* ``alive`` — touched every ``GALAXY_HEALTH_INTERVAL_SECONDS`` by a timer of the
  worker's consumer (the prefork pool's event loop, or the timer thread of the
  threads pool): a worker whose loop is stuck or frozen (``SIGSTOP``, a blocked
  loop) stops touching it, and ``galaxy-tasks healthcheck`` fails once it is older
  than three intervals;
* ``ready`` — written when the worker is connected and consuming (Celery's
  ``worker_ready``), removed when its shutdown begins: ``galaxy-tasks healthcheck
  --ready`` is readiness.

Files, not an HTTP endpoint or a broadcast (``celery inspect ping`` goes through the
broker and every worker): checking needs nothing but the file system of the node.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import bootsteps

ALIVE = "alive"
READY = "ready"


def health_dir() -> Path | None:
    from galaxy_tasks.config import get_settings

    configured = get_settings().health_dir
    return Path(configured) if configured else None


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(f"{os.getpid()} {time.time():.3f}\n")
    tmp.replace(path)  # atomic: a check never reads a half-written file


class HeartbeatFile(bootsteps.StartStopStep):  # type: ignore[misc]  # Celery is untyped
    """Touches ``alive`` from the consumer's timer while the worker runs."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._timer_entry: Any = None

    def start(self, parent: Any) -> None:
        directory = health_dir()
        if directory is None:
            return
        from galaxy_tasks.config import get_settings

        interval = get_settings().health_interval_seconds
        alive = directory / ALIVE
        touch(alive)
        self._timer_entry = parent.timer.call_repeatedly(interval, touch, (alive,), priority=10)

    def stop(self, parent: Any) -> None:
        if self._timer_entry is not None:
            self._timer_entry.cancel()
            self._timer_entry = None

    shutdown = stop


def mark_ready() -> None:
    directory = health_dir()
    if directory is not None:
        touch(directory / READY)


def mark_not_ready() -> None:
    directory = health_dir()
    if directory is not None:
        (directory / READY).unlink(missing_ok=True)


def check(directory: Path, *, ready: bool, max_age_seconds: float, now: float | None = None) -> str | None:
    """``None`` when healthy, else why not (for ``galaxy-tasks healthcheck``)."""
    alive = directory / ALIVE
    try:
        age = (time.time() if now is None else now) - alive.stat().st_mtime
    except FileNotFoundError:
        return f"{alive} does not exist: the worker has not started (or GALAXY_HEALTH_DIR differs)"
    if age > max_age_seconds:
        return f"{alive} is {age:.1f} s old (limit {max_age_seconds:g} s): the worker's loop is stuck or frozen"
    if ready and not (directory / READY).exists():
        return f"{directory / READY} does not exist: the worker is starting, or shutting down"
    return None
