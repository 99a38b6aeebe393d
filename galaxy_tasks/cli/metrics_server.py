"""``galaxy-tasks metrics``: one Prometheus endpoint adding up every process of this host."""

from __future__ import annotations

import os
import time

from galaxy_tasks.config import get_settings


def serve_metrics(port: int, address: str = "127.0.0.1") -> None:
    """Start the exporter in a background thread of the current process."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
    start_http_server(port, addr=address, registry=registry)


def metrics_command(port: int | None) -> int:
    settings = get_settings()
    if not settings.metrics_dir:
        print("galaxy-tasks metrics: set GALAXY_METRICS_DIR to the folder the workers write to")
        return 2
    serve_metrics(port or settings.metrics_port, settings.metrics_address)
    while True:
        time.sleep(3600)
