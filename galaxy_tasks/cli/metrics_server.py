"""``galaxy-tasks metrics``: one Prometheus endpoint adding up every process of this host; with ``--cluster``,
the cluster's state instead (:mod:`galaxy_tasks.cli.cluster_metrics`)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from galaxy_tasks.config import ConfigError, get_settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


def serve_metrics(port: int, address: str = "127.0.0.1") -> None:
    """Start the exporter of this host's (or node's) processes in a background thread."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
    _serve(registry, port, address)


def serve_cluster_metrics(port: int, address: str = "127.0.0.1") -> None:
    """Start the exporter of the cluster's state (read at each scrape) in a background thread."""
    from prometheus_client import CollectorRegistry

    from galaxy_tasks.bootstrap import resources
    from galaxy_tasks.celery_app import app
    from galaxy_tasks.cli.cluster_metrics import ClusterCollector

    registry = CollectorRegistry()
    registry.register(ClusterCollector(resources, app))
    _serve(registry, port, address)


def _serve(registry: CollectorRegistry, port: int, address: str) -> None:
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"the metrics endpoint cannot listen on {address}:{port} ({exc.strerror}); every process that "
            "serves metrics on a host needs a port of its own (GALAXY_METRICS_PORT)"
        ) from exc


def metrics_command(port: int | None, *, cluster: bool = False) -> int:
    settings = get_settings()
    if cluster:
        serve_cluster_metrics(port or settings.metrics_port, settings.metrics_address)
    elif not settings.metrics_dir:
        print("galaxy-tasks metrics: set GALAXY_METRICS_DIR to the folder the workers write to")
        return 2
    else:
        serve_metrics(port or settings.metrics_port, settings.metrics_address)
    while True:
        time.sleep(3600)
