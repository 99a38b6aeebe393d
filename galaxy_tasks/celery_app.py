"""The Celery application object and its process-lifecycle hooks."""

from __future__ import annotations

import os
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown, worker_shutting_down

from galaxy_tasks import _compat

_compat.install()

app = Celery("galaxy_tasks")
app.config_from_object("celeryconfig")

shutdown_requested = threading.Event()
"""Set when this worker begins its shutdown; long-running loops poll it and return."""


@worker_shutting_down.connect
def _on_worker_shutting_down(**_: Any) -> None:
    shutdown_requested.set()


@worker_process_init.connect
def _on_worker_process_init(**_: Any) -> None:
    from galaxy_tasks.bootstrap import forget_resources

    forget_resources()


@worker_process_shutdown.connect
def _on_worker_process_shutdown(**_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]  # untyped upstream
