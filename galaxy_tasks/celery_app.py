"""The Celery application object and its process-lifecycle hooks."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    beat_init,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutting_down,
)

from galaxy_tasks import _compat

_compat.install()

app = Celery("galaxy_tasks")
app.config_from_object("galaxy_tasks.celeryconfig")


def _add_health_steps() -> None:
    from galaxy_tasks.worker_health import HeartbeatFile

    app.steps["consumer"].add(HeartbeatFile)


_add_health_steps()

shutdown_requested = threading.Event()
"""Set when this worker begins its shutdown; long-running loops poll it and return."""


@worker_shutting_down.connect
def _on_worker_shutting_down(**_: Any) -> None:
    shutdown_requested.set()
    from galaxy_tasks.worker_health import mark_not_ready

    mark_not_ready()


@worker_ready.connect
def _on_worker_ready(**_: Any) -> None:
    from galaxy_tasks.worker_health import mark_ready

    mark_ready()


def current_task_context() -> tuple[str, str] | None:
    """The id and name of the task this thread runs (Celery's task stack is per thread), or ``None``."""
    from celery._state import get_current_task

    task = get_current_task()
    if task is None or task.request.id is None:
        return None
    return str(task.request.id), str(task.name)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _apply_galaxy_log_settings(logger: Any = None, format: str | None = None, **_: Any) -> None:
    """``GALAXY_LOG_FORMAT`` and ``GALAXY_LOG_LEVEL`` on the handlers Celery just set up (workers and beat)."""
    from galaxy_tasks import logs
    from galaxy_tasks.config import get_settings

    settings = get_settings()
    handlers = logger.handlers if logger is not None else []
    logs.install(
        handlers,
        log_format=settings.log_format,
        level=settings.log_level,
        fmt=format,
        task_context=current_task_context,
    )


@worker_init.connect
@beat_init.connect
def _serve_metrics_of_this_node(**_: Any) -> None:
    """``GALAXY_METRICS_SERVE=1``: this worker (or beat) serves its own processes' metrics.

    One endpoint per node — container or host — adding up its pool children's
    files; Prometheus scrapes every node (deploy/docker-compose.yml).
    """
    from galaxy_tasks.config import get_settings

    settings = get_settings()
    if settings.metrics_serve:
        from galaxy_tasks.cli.metrics_server import serve_metrics
        from galaxy_tasks.config import ConfigError

        try:
            serve_metrics(settings.metrics_port, settings.metrics_address)
        except ConfigError as exc:
            # A signal handler's exception is only logged by Celery, and the node would run on
            # without metrics, unseen; SystemExit stops it, loudly, as any other bad setting does.
            print(f"galaxy-tasks: configuration error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from exc


@worker_process_init.connect
def _on_worker_process_init(**_: Any) -> None:
    from galaxy_tasks.bootstrap import forget_resources

    forget_resources()


@worker_process_shutdown.connect
def _on_worker_process_shutdown(**_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]  # untyped upstream
