"""A handed-on entry the broker lost is repaired while other games keep the queue busy (issue 11, item 4).

The repair used to run only while the health-event queue was empty; under a
steady load it never ran, and the game stayed behind for as long as the load
lasted.  Now each game is judged by its own age.  Here the lost message is
taken out of the queue by hand; then thousands of entries of other games keep
the queue full (one task per entry, a one-slot worker) while the lost game's
entry must be re-applied from the stream.
"""

from __future__ import annotations

import random

import pytest

from galaxy_tasks.testing.cluster import Cluster, wait_until
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

QUEUE = "gamemaster.health_events"
LOAD_GAMES = [f"busy-{n:02d}" for n in range(20)]


def _entry(game: str, event_type: str, details: str = "{}") -> dict[str, str]:
    return {"game_id": game, "container_id": "c", "event_type": event_type, "occurred_at_ms": "5", "details": details}


def test_a_lost_entry_is_repaired_while_the_queue_is_still_full_of_other_games_work(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    pipeline.add_games({"lost": "running", **dict.fromkeys(LOAD_GAMES, "running")})
    cluster.env.update(
        GALAXY_BACKLOG_THRESHOLD="1000000", GALAXY_DISPATCH_WINDOW="0"
    )  # one task per entry: a long queue
    cluster.pool_worker("control", concurrency=1, queues="galaxy.periodic")  # supervisor, relays, repair
    cluster.long_running_worker()
    cluster.beat()
    (lost,) = pipeline.xadd_health([_entry("lost", "container_oom")])
    wait_until(lambda: pipeline.offset() == lost and pipeline.r.llen(QUEUE) == 1, timeout=30, what="the handoff")
    pipeline.r.rpop(QUEUE)  # the broker lost it

    rng = random.Random(3)
    kinds = ["probe_failed", "inspect_unhealthy"]
    load = pipeline.xadd_health([_entry(rng.choice(LOAD_GAMES), rng.choice(kinds)) for _ in range(6000)])
    wait_until(lambda: pipeline.offset() == load[-1], timeout=60, what="the load to be handed on")
    cluster.pool_worker("pool", concurrency=1, queues=QUEUE)

    def repaired() -> bool:
        return pipeline.rows(["lost"])["lost"][:2] == ("engine_unreachable", "oom")

    wait_until(repaired, timeout=60, what="the lost entry to be repaired")
    assert pipeline.r.llen(QUEUE) > 0, "repaired only once the queue was empty: the load starved the repair"
    assert pipeline.metric("galaxy_gm_health_events_order_repairs_total") >= 1
