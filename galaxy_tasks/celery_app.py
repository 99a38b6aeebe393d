"""The Celery application object and its process-lifecycle hooks."""

from __future__ import annotations

import os
import threading
from typing import Any

from celery import Celery
from celery.signals import beat_init, worker_init, worker_process_init, worker_process_shutdown, worker_shutting_down

from galaxy_tasks import _compat

_compat.install()

app = Celery("galaxy_tasks")
app.config_from_object("celeryconfig")

shutdown_requested = threading.Event()
"""Set when this worker begins its shutdown; long-running loops poll it and return."""


@worker_shutting_down.connect
def _on_worker_shutting_down(**_: Any) -> None:
    shutdown_requested.set()


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

        serve_metrics(settings.metrics_port, settings.metrics_address)


@worker_process_init.connect
def _on_worker_process_init(**_: Any) -> None:
    from galaxy_tasks.bootstrap import forget_resources

    forget_resources()


@worker_process_shutdown.connect
def _on_worker_process_shutdown(**_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]  # untyped upstream
