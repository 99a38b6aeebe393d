"""galaxy_tasks: runtime health of containerised game engines, as one Celery application.

``celery -A galaxy_tasks worker|beat|flower`` finds the app here.  The metrics
directory is exported before anything imports prometheus-client, because
prometheus-client picks its multiprocess mode at import time.
"""

from __future__ import annotations

import os

_metrics_dir = os.environ.get("GALAXY_METRICS_DIR", "")
if _metrics_dir:
    os.makedirs(_metrics_dir, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir

from galaxy_tasks.celery_app import app  # noqa: E402  (after the metrics environment)
from galaxy_tasks.tasks import control, gamemaster  # noqa: E402, F401  (registers every task on import)

__all__ = ["app"]
