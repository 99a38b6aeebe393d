"""``GALAXY_METRICS_SERVE=1``: a worker serves its own node's metrics (one endpoint per container)."""

from __future__ import annotations

import urllib.request

import pytest

from galaxy_tasks.testing.cluster import Cluster, wait_until
from galaxy_tasks.testing.services import free_loopback_port
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.e2e


def test_a_worker_with_metrics_serve_exposes_what_its_pool_children_counted(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    port = free_loopback_port()
    cluster.env.update(GALAXY_METRICS_SERVE="1", GALAXY_METRICS_PORT=str(port))
    cluster.pool_worker("pool", concurrency=2)
    pipeline.send_tasks("gamemaster.apply_health_event", [["1-0", {"event_type": "probe_failed"}]])  # no game id

    def scraped() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
        return 'galaxy_gm_health_events_skipped_total{reason="malformed"} 1.0' in body

    wait_until(scraped, timeout=30, what="the pool child's gauge on the worker's own endpoint")


def test_a_second_worker_on_a_metrics_port_already_taken_stops_at_start_saying_so(cluster: Cluster) -> None:
    port = free_loopback_port()
    cluster.env.update(GALAXY_METRICS_SERVE="1", GALAXY_METRICS_PORT=str(port))
    cluster.pool_worker("first", concurrency=1)

    with pytest.raises(AssertionError, match="exited at start"):
        cluster.pool_worker("second", concurrency=1)
    (second,) = [p for p in cluster.processes if p.name == "second"]
    second.popen.wait(timeout=30)

    assert second.popen.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in second.log_text()
    assert "GALAXY_METRICS_PORT" in second.log_text()
