"""A game's row held ``FOR UPDATE`` by another session for minutes stops nothing else (issue 11, item 2).

Before the bounded waits, every task of the held game blocked a pool slot with
no limit, the Redis broker handed each still-running task to a second worker
after the visibility timeout, and within a minute every slot — those of the
supervisor and the relays too — waited on the one row.  Now a lock wait ends
at ``GALAXY_DATABASE_LOCK_TIMEOUT_MS`` and the task is retried later (with a
countdown well under the visibility timeout); a pool task is interrupted at
its soft time limit, killed at its hard one, both under the visibility
timeout.  And the supervisor, the relays and the order repair run on a worker no
work on games reaches (the long-running one).  The test holds the row for three
visibility timeouts (the tests' lowered 10 s) with a two-slot pool worker.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from galaxy_tasks.testing.cluster import FAST_SETTINGS, CeleryProcess, Cluster, wait_until
from tests.support.brokers import ON_BOTH_BROKERS
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

OTHERS = [f"free-{n:02d}" for n in range(15)]
VISIBILITY_SECONDS = float(FAST_SETTINGS["GALAXY_BROKER_VISIBILITY_TIMEOUT_SECONDS"])


def _entry(game: str, event_type: str, details: str = "{}") -> dict[str, str]:
    return {"game_id": game, "container_id": "c", "event_type": event_type, "occurred_at_ms": "5", "details": details}


def _succeeded(processes: list[CeleryProcess], task: str) -> int:
    """Runs of ``task`` that succeeded on any of ``processes``."""
    return sum(
        1
        for process in processes
        for line in process.log_text().splitlines()
        if f"Task {task}[" in line and "succeeded" in line
    )


@ON_BOTH_BROKERS
def test_a_row_held_for_three_visibility_timeouts_stops_no_other_game_and_applies_once_after(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    pipeline.add_games({"held": "running", **dict.fromkeys(OTHERS, "running")})
    cluster.env.update(GALAXY_ORDER_REPAIR_AFTER_SECONDS="600")  # duplicates here can only be redeliveries
    pool = cluster.pool_worker("pool", concurrency=2)
    long_running = cluster.long_running_worker()  # the control tasks run there, beside the singletons
    cluster.beat()
    holder = create_engine(pipeline.database_url)
    with holder.connect() as conn, conn.begin():
        conn.execute(text("SELECT 1 FROM gamemaster.runtime_records WHERE game_id = 'held' FOR UPDATE"))
        held_since = time.monotonic()
        held_ids = pipeline.xadd_health(
            [
                _entry("held", "container_oom"),
                _entry("held", "probe_recovered", '{"prior_failures": 0}'),
                _entry("held", "container_exited", '{"exit_code": 3}'),
            ]
        )
        other_ids = pipeline.xadd_health([_entry(game, "container_oom") for game in OTHERS])
        wait_until(
            lambda: all(row[:2] == ("engine_unreachable", "oom") for row in pipeline.rows(OTHERS).values()),
            timeout=3 * VISIBILITY_SECONDS,
            what="every other game to be applied while the row is held",
        )
        assert time.monotonic() - held_since < 3 * VISIBILITY_SECONDS
        logs = [pool, long_running]
        relays_before = _succeeded(logs, "gamemaster.relay_lobby_events")
        supervisions_before = _succeeded(logs, "galaxy.supervise_long_running")
        while time.monotonic() - held_since < 3 * VISIBILITY_SECONDS:
            time.sleep(1)
        assert pipeline.rows(["held"])["held"][:2] == ("running", ""), "nothing of the held game applied yet"
        assert _succeeded(logs, "gamemaster.relay_lobby_events") > relays_before, "relays stopped"
        assert _succeeded(logs, "galaxy.supervise_long_running") > supervisions_before, "supervisor stopped"
    holder.dispose()

    pipeline.wait_settled([*held_ids, *other_ids], {"held": held_ids[-1]}, timeout=60)
    assert pipeline.rows(["held"])["held"][:2] == ("engine_unreachable", "exited")
    snapshots = pipeline.lobby_snapshots(["held"])["held"]
    assert [s[:2] for s in snapshots] == [
        ("engine_unreachable", "oom"),
        ("running", "healthy"),
        ("engine_unreachable", "exited"),
    ], "each of the held game's entries applied once, in order"
    assert pipeline.metric("galaxy_gm_health_events_duplicate_total") == 0, "no copy of a running task was delivered"
