"""The database goes back in time; what is committed next still reaches every stream (issue 11, item 6).

Real Celery processes (pool worker, long-running worker with the bridges, beat
with the relays), the private dockerd, PostgreSQL and Redis.  Each phase
publishes Runtime Manager health events for two games (as its tasks do, through
the health-event store and outbox), sends one stop job per game through
``runtime:stop_jobs`` and waits until the health events, the job results and
the Game Master's Lobby snapshots are on their streams and every outbox is
empty.  Then the database goes back: restored from a dump taken after the
first phase (the system stopped meanwhile, as an operator restores), or
downgraded to nothing and upgraded again.  PostgreSQL then numbers the next
rows of every outbox with numbers Redis saw appended in the second phase; the
third phase's health events, job results and Lobby snapshots must all reach
their streams all the same (the Game Master catches up on the second phase's
entries itself: its order repair re-reads what its restored cursors miss).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import docker
import pytest
from sqlalchemy import Engine, text

from galaxy_tasks.adapters.postgres.engine import build_autocommit_engine, build_engine
from galaxy_tasks.adapters.postgres.health_events import PostgresHealthEventStore
from galaxy_tasks.adapters.postgres.migrate import downgrade, upgrade
from galaxy_tasks.adapters.postgres.outboxes import health_events_outbox
from galaxy_tasks.adapters.postgres.stream_outbox import PostgresStreamOutbox
from galaxy_tasks.contract import HEALTH_EVENT_OUTBOX, HEALTH_EVENTS_STREAM, JOB_RESULT_OUTBOX, LOBBY_OUTBOX
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.service.health_publisher import publish_health_event
from galaxy_tasks.testing.cluster import Cluster, wait_until
from galaxy_tasks.testing.engines import TEST_ENGINE_ENV
from tests.support.lobby import Lobby
from tests.support.pipeline import Pipeline, now_ms
from tests.support.services import dump_database, restore_database

pytestmark = pytest.mark.e2e

GAMES = ("d1", "d2")
QUIET_SWEEPS = {
    "GALAXY_PROBE_INTERVAL_SECONDS": "60",
    "GALAXY_INSPECT_INTERVAL_SECONDS": "60",
    "GALAXY_RECONCILE_INTERVAL_SECONDS": "60",
}
JOB_BRIDGE_LEASES = ("rtmanager:stream_bridge:start_jobs:lease", "rtmanager:stream_bridge:stop_jobs:lease")
OUTBOXES = tuple(outbox.table for outbox in (HEALTH_EVENT_OUTBOX, JOB_RESULT_OUTBOX, LOBBY_OUTBOX))
SETTLE_SECONDS = 60


class System:
    """The Celery processes, the Lobby's job streams, and the RTM's health publishing in this process."""

    def __init__(self, pipeline: Pipeline, cluster: Cluster, docker_host: str, client: docker.DockerClient) -> None:
        self.pipeline = pipeline
        self.cluster = cluster
        self.lobby = Lobby(pipeline, client)
        cluster.env.update(TEST_ENGINE_ENV, **QUIET_SWEEPS, DOCKER_HOST=docker_host)
        self.starts = 0
        self.engines: tuple[Engine, Engine] | None = None

    def start(self) -> None:
        self.starts += 1
        self.cluster.pool_worker(f"pool-{self.starts}", concurrency=4)
        self.cluster.long_running_worker(f"long-running-{self.starts}")
        self.cluster.beat(f"beat-{self.starts}")
        wait_until(
            lambda: all(self.pipeline.r.exists(key) for key in JOB_BRIDGE_LEASES), timeout=30, what="the job bridges"
        )
        url = self.pipeline.database_url
        self.engines = (
            build_autocommit_engine(url, pool_size=1, connect_timeout=5),
            build_engine(url, pool_size=1, connect_timeout=5),
        )

    def stop(self) -> None:
        self.cluster.stop_all()
        for engine in self.engines or ():
            engine.dispose()
        self.engines = None

    def publish_health(self, game: str, phase: int) -> None:
        """Two events whose Lobby summaries differ (probe_failed, then healthy): each makes a snapshot."""
        assert self.engines is not None
        store = PostgresHealthEventStore(self.engines[0])
        pipeline = self.pipeline
        outbox = PostgresStreamOutbox(self.engines[1], pipeline.r, pipeline.redis_url, health_events_outbox(0))
        at = now_ms()
        failed = HealthEvent.probe_failed(game, "c", at, consecutive_failures=3, last_error=f"phase {phase}")
        started = HealthEvent.container_started(game, "c", at + 1, image_ref=f"phase-{phase}")
        publish_health_event(store, outbox, failed)
        publish_health_event(store, outbox, started)

    def run_phase(self, phase: int) -> int:
        """Publish and send, wait until everything is out; the phase's start (ms) for the Lobby snapshots."""
        began = now_ms()
        results_before = {game: len(self.lobby.results(game)) for game in GAMES}
        for game in GAMES:
            self.publish_health(game, phase)
            self.lobby.stop(game, reason=f"phase {phase}")
        for game in GAMES:
            self.wait_for_game(game, phase, began, results_before[game] + 1)
        wait_until(self.outboxes_empty, timeout=SETTLE_SECONDS, what="every outbox empty")
        return began

    def wait_for_game(self, game: str, phase: int, began_ms: int, results: int) -> None:
        marks = {f"phase {phase}", f"phase-{phase}"}
        wait_until(
            lambda: marks <= self.health_phases(game),
            timeout=SETTLE_SECONDS,
            what=f"phase {phase}'s health events of {game} on {HEALTH_EVENTS_STREAM}",
        )
        self.lobby.wait_results(game, results, timeout=SETTLE_SECONDS)
        wait_until(
            lambda: self.lobby_after(game, began_ms) and self.last_snapshot_is_healthy(game),
            timeout=SETTLE_SECONDS,
            what=f"phase {phase}'s Lobby snapshots of {game}",
        )

    def health_phases(self, game: str) -> set[str]:
        entries = cast(list[tuple[str, dict[str, str]]], self.pipeline.r.xrange(HEALTH_EVENTS_STREAM))
        found: set[str] = set()
        for _, fields in entries:
            if fields["game_id"] == game:
                details = json.loads(fields["details"])
                found.add(str(details.get("last_error") or details.get("image_ref")))
        return found

    def lobby_after(self, game: str, began_ms: int) -> list[dict[str, str]]:
        entries = cast(list[tuple[str, dict[str, str]]], self.pipeline.r.xrange("gm:lobby_events"))
        return [f for _, f in entries if f["game_id"] == game and int(f["occurred_at_ms"]) >= began_ms]

    def last_snapshot_is_healthy(self, game: str) -> bool:
        snapshots = self.pipeline.lobby_snapshots([game]).get(game, [])
        return bool(snapshots) and snapshots[-1][1] == "healthy"

    def outboxes_empty(self) -> bool:
        with self.pipeline.engine.connect() as conn:
            return all(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0 for table in OUTBOXES)


@pytest.fixture
def system(
    pipeline: Pipeline, cluster: Cluster, docker_host: str, docker_client: docker.DockerClient
) -> Iterator[System]:
    running = System(pipeline, cluster, docker_host, docker_client)
    yield running
    running.stop()


@pytest.mark.parametrize("going_back", ["restore_from_an_earlier_dump", "downgrade_then_upgrade"])
def test_after_the_database_goes_back_the_next_health_events_job_results_and_lobby_snapshots_reach_their_streams(
    system: System, pipeline: Pipeline, tmp_path: Path, going_back: str
) -> None:
    pipeline.add_games(dict.fromkeys(GAMES, "running"))
    system.start()
    system.run_phase(1)
    dump = tmp_path / "phase-1.dump"
    dump_database(pipeline.database_url, dump)
    system.run_phase(2)
    results_before = {game: len(system.lobby.results(game)) for game in GAMES}

    system.stop()
    pipeline.engine.dispose()
    if going_back == "restore_from_an_earlier_dump":
        restore_database(pipeline.database_url, dump)
    else:
        downgrade(pipeline.database_url, "base")
        upgrade(pipeline.database_url)
        pipeline.add_games(dict.fromkeys(GAMES, "running"))  # the Lobby registers its games again
    system.start()
    system.run_phase(3)  # waits for every stream: a row taken for published would never come
    for game in GAMES:
        assert len(system.lobby.results(game)) == results_before[game] + 1, "one new result, nothing else"
    assert pipeline.metric("galaxy_outbox_new_generations_total") >= len(GAMES)
