"""Two beats with ``GALAXY_BEAT_SCHEDULER=redbeat``: one schedules, the other takes over when it dies."""

from __future__ import annotations

import pytest

from galaxy_tasks.testing.cluster import Cluster, wait_until
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.e2e

SENDING = "Sending due task supervise-long-running"


def test_a_standby_beat_schedules_nothing_until_the_active_one_is_killed_then_takes_over(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    cluster.env.update(GALAXY_BEAT_SCHEDULER="redbeat", GALAXY_BEAT_LOCK_TIMEOUT_SECONDS="3")
    first = cluster.beat("beat-a")
    wait_until(lambda: SENDING in first.log_text(), timeout=30, what="the first beat to schedule")
    standby = cluster.beat("beat-b")
    wait_until(lambda: first.log_text().count(SENDING) >= 4, timeout=30, what="a few more ticks of the first beat")
    assert SENDING not in standby.log_text()
    assert pipeline.r.exists("galaxy:redbeat::lock")

    cluster.kill9(first)
    wait_until(lambda: SENDING in standby.log_text(), timeout=30, what="the standby beat to take over")
