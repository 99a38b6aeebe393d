"""A worker whose clock runs 3 s ahead of beat's still runs the periodic work (issue 11, item 7).

A message's ``expires`` is a time stamped by the sender and judged by the
receiving worker's clock.  With an expiry of one interval (a relay's 1 s, the
supervisor's 2 s) such a worker found every periodic message expired: no relay,
no supervisor, so no bridge either.  The worker that consumes ``galaxy.periodic`` (the long-running
one, beside the bridges) runs here under libfaketime; so does the pool worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from galaxy_tasks.testing.cluster import Cluster, wait_until
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration


def _ahead(seconds: int) -> dict[str, str]:
    """libfaketime preloaded into the worker itself (the ``faketime`` command would run the worker as
    its child, out of reach of the test's stop by pid); ``scripts/test-tools.sh`` installs it."""
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))
    assert found, "libfaketime is missing: bash scripts/test-tools.sh installs Debian's faketime"
    return {"LD_PRELOAD": str(found[0]), "FAKETIME": f"+{seconds}s"}


def _succeeded(log: str, task: str) -> int:
    return sum(1 for line in log.splitlines() if f"Task {task}[" in line and "succeeded" in line)


def test_a_worker_three_seconds_ahead_of_beat_runs_the_supervisor_and_the_relays(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    pipeline.add_games({"g1": "running"})
    cluster.pool_worker("ahead", concurrency=2, environment=_ahead(3))
    control = cluster.long_running_worker(environment=_ahead(3))
    cluster.beat()
    ids = pipeline.xadd_health(
        [{"game_id": "g1", "container_id": "c", "event_type": "container_oom", "occurred_at_ms": "5", "details": "{}"}]
    )
    pipeline.wait_settled(ids, {"g1": ids[-1]}, timeout=30)  # the supervisor started the bridge
    assert pipeline.rows(["g1"])["g1"][:2] == ("engine_unreachable", "oom")
    wait_until(
        lambda: (
            _succeeded(control.log_text(), "gamemaster.relay_lobby_events") >= 3
            and _succeeded(control.log_text(), "rtmanager.relay_health_events") >= 3
        ),
        timeout=20,
        what="the relays to run on the worker whose clock is ahead",
    )
    assert _succeeded(control.log_text(), "galaxy.supervise_long_running") >= 1
