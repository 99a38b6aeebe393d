"""The inspect sweep (seed 003) against a real Docker Engine, PostgreSQL and Redis.

Containers from the locally built busybox image, host networking.  The sweep
lists the managed containers once; only those the list cannot vouch for are
inspected; restarts under a restart policy and a failing HEALTHCHECK publish
``inspect_unhealthy`` with the SPEC's details and leave the seed-000 snapshot.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import cast

import docker
import pytest
import redis
from sqlalchemy import text

from galaxy_tasks.adapters.docker.runtime import GAME_LABEL, DockerRuntime
from galaxy_tasks.adapters.postgres.engine import build_autocommit_engine
from galaxy_tasks.adapters.postgres.health_events import PostgresHealthEventStore
from galaxy_tasks.adapters.postgres.outboxes import health_events_outbox
from galaxy_tasks.adapters.postgres.rtm_records import PostgresRuntimeRecords
from galaxy_tasks.adapters.postgres.stream_outbox import PostgresStreamOutbox
from galaxy_tasks.adapters.redis.inspect_baselines import RedisInspectBaselines
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.long_running import HEALTH_EVENTS_STREAM
from galaxy_tasks.service.health_publisher import publish_health_event
from galaxy_tasks.service.inspect_sweep import SweepPlan, inspect_container, plan_inspect_sweep
from tests.support.docker_engine import ENGINE_IMAGE
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration


class Rig:
    def __init__(self, pipeline: Pipeline, docker_host: str, client: docker.DockerClient) -> None:
        self.pipeline = pipeline
        self.client = client
        self.runtime = DockerRuntime(docker_host)
        self.records = PostgresRuntimeRecords(pipeline.engine)
        self.baselines = RedisInspectBaselines(pipeline.r, pipeline.redis_url)
        self.hot = build_autocommit_engine(pipeline.database_url, pool_size=2, connect_timeout=5)
        self.store = PostgresHealthEventStore(self.hot)
        outbox_client = redis.Redis.from_url(pipeline.redis_url, decode_responses=True)
        self.outbox = PostgresStreamOutbox(pipeline.engine, outbox_client, pipeline.redis_url, health_events_outbox(0))
        self.inspected: list[str] = []

    def close(self) -> None:
        for container in self.client.containers.list(all=True, filters={"label": GAME_LABEL}):
            container.remove(force=True)
        self.runtime.close()
        self.hot.dispose()

    def start(self, game_id: str, command: list[str] | None = None, **options: object) -> str:
        container = self.client.containers.run(
            ENGINE_IMAGE, command, detach=True, network_mode="host", labels={GAME_LABEL: game_id}, **options
        )
        with self.pipeline.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO rtmanager.runtime_records (game_id, status, current_container_id) "
                    "VALUES (:g, 'running', :c)"
                ),
                {"g": game_id, "c": container.id},
            )
        return str(container.id)

    def publish(self, event: HealthEvent) -> object:
        return publish_health_event(self.store, self.outbox, event)

    def sweep(self) -> SweepPlan:
        plan = plan_inspect_sweep(self.records, self.runtime, self.baselines, now_ms=int(time.time() * 1000))
        for game_id, container_id in plan.to_inspect:
            self.inspected.append(game_id)
            inspect_container(
                self.runtime,
                self.baselines,
                self.publish,
                game_id=game_id,
                container_id=container_id,
                now_ms=int(time.time() * 1000),
            )
        return plan

    def events(self, game_id: str) -> list[dict[str, object]]:
        entries = cast(list[tuple[str, dict[str, str]]], self.pipeline.r.xrange(HEALTH_EVENTS_STREAM))
        return [json.loads(f["details"]) for _, f in entries if f["game_id"] == game_id]

    def snapshot(self, game_id: str) -> tuple[str, str, dict[str, object]]:
        with self.pipeline.engine.connect() as conn:
            row = conn.execute(
                text("SELECT status, source, details FROM rtmanager.health_snapshots WHERE game_id = :g"),
                {"g": game_id},
            ).one()
        return row.status, row.source, row.details


@pytest.fixture
def rig(pipeline: Pipeline, docker_host: str, docker_client: docker.DockerClient) -> Iterator[Rig]:
    made = Rig(pipeline, docker_host, docker_client)
    yield made
    made.close()


def _until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _game() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def test_a_healthy_running_engine_is_inspected_once_for_its_baseline_then_vouched_for_by_the_list(rig: Rig) -> None:
    game = _game()
    rig.start(game)
    first = rig.sweep()
    assert first.to_inspect == [(game, rig.records.running()[0].container_id)]
    assert rig.sweep().vouched == [game]
    assert rig.inspected == [game]
    assert rig.events(game) == []


def test_restarts_under_a_restart_policy_publish_inspect_unhealthy_with_the_growing_restart_count(rig: Rig) -> None:
    game = _game()
    container_id = rig.start(game, ["sh", "-c", "sleep 1; exit 1"], restart_policy={"Name": "on-failure"})
    rig.sweep()  # the baseline
    seen: list[int] = []

    def two_growing() -> bool:
        rig.sweep()
        seen[:] = [int(cast(int, d["restart_count"])) for d in rig.events(game)]
        return len(set(seen)) >= 2

    _until(two_growing, "two inspect_unhealthy events with different restart counts", timeout=60)
    assert seen == sorted(seen)
    assert seen[0] >= 1
    assert all(set(d) == {"restart_count", "state", "health"} for d in rig.events(game))
    status, source, details = rig.snapshot(game)
    assert (status, source) == ("inspect_unhealthy", "inspect")
    assert details["restart_count"] == seen[-1]
    assert rig.client.containers.get(container_id).attrs["RestartCount"] >= seen[-1]


def test_a_failing_healthcheck_publishes_inspect_unhealthy_with_health_unhealthy(rig: Rig) -> None:
    game = _game()
    rig.start(
        game,
        healthcheck={"test": ["CMD", "sh", "-c", "exit 1"], "interval": 200_000_000, "retries": 1},
    )

    def unhealthy_published() -> bool:
        rig.sweep()
        return any(d.get("health") == "unhealthy" for d in rig.events(game))

    _until(unhealthy_published, "inspect_unhealthy with health=unhealthy")
    status, source, details = rig.snapshot(game)
    assert (status, source) == ("inspect_unhealthy", "inspect")
    assert details == {"restart_count": 0, "state": "running", "health": "unhealthy"}


def test_a_running_record_whose_container_is_gone_is_left_to_the_reconciler(rig: Rig) -> None:
    game = _game()
    container_id = rig.start(game)
    rig.client.containers.get(container_id).remove(force=True)
    plan = rig.sweep()
    assert plan.missing == [game]
    assert plan.to_inspect == []
    assert rig.events(game) == []


def test_baselines_of_games_no_longer_running_are_pruned_each_sweep(rig: Rig) -> None:
    game = _game()
    rig.start(game)
    rig.sweep()
    assert rig.baselines.get(game) is not None
    with rig.pipeline.engine.begin() as conn:
        conn.execute(text("UPDATE rtmanager.runtime_records SET status = 'stopped' WHERE game_id = :g"), {"g": game})
    assert rig.sweep().pruned == 1
    assert rig.baselines.get(game) is None
