"""galaxy_tasks: runtime health of containerised game engines, as one Celery application.

``celery -A galaxy_tasks worker|beat|flower`` finds the app here.  The metrics
directory is exported before any galaxy_tasks metric exists: prometheus-client
picks its multiprocess mode when it is imported, and the ``celery`` command has
usually imported it already (Flower's command plugin does), so the value class
is picked again here.
"""

from __future__ import annotations

import os
import sys

_metrics_dir = os.environ.get("GALAXY_METRICS_DIR", "")
if _metrics_dir:
    os.makedirs(_metrics_dir, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
    if "prometheus_client.values" in sys.modules:
        from prometheus_client import values as _values

        _values.ValueClass = _values.get_value_class()  # type: ignore[no-untyped-call]  # untyped upstream

from galaxy_tasks.celery_app import app  # noqa: E402  (after the metrics environment)
from galaxy_tasks.tasks import control, gamemaster, rtmanager, rtmanager_jobs  # noqa: E402, F401  (registers every task on import)

__all__ = ["app"]
