"""An in-process Runtime Manager on the real services, for the health-sweep tests.

The sweeps' service functions run in the test process against the private
dockerd, PostgreSQL and Redis; what they publish goes through the real health
publisher to ``runtime:health_events`` and ``rtmanager.health_snapshots``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import cast

import docker
import redis
from sqlalchemy import text

from galaxy_tasks.adapters.docker.runtime import GAME_LABEL, DockerRuntime
from galaxy_tasks.adapters.http_probe import HttpProber
from galaxy_tasks.adapters.postgres.engine import build_autocommit_engine
from galaxy_tasks.adapters.postgres.health_events import PostgresHealthEventStore
from galaxy_tasks.adapters.postgres.outboxes import health_events_outbox
from galaxy_tasks.adapters.postgres.rtm_records import PostgresRuntimeRecords
from galaxy_tasks.adapters.postgres.stream_outbox import PostgresStreamOutbox
from galaxy_tasks.adapters.redis.inspect_baselines import RedisInspectBaselines
from galaxy_tasks.adapters.redis.orphans import RedisOrphanReport
from galaxy_tasks.adapters.redis.probe_states import RedisProbeStates
from galaxy_tasks.contract import HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.probe import ProbeThresholds
from galaxy_tasks.service.health_publisher import HealthPublisher
from galaxy_tasks.service.inspect_sweep import SweepPlan, inspect_container, plan_inspect_sweep
from galaxy_tasks.service.probe_sweep import ProbePlan, plan_probe_sweep, probe_engine
from galaxy_tasks.service.reconciler import Reconciliation, reconcile
from tests.support.docker_engine import ENGINE_IMAGE
from tests.support.pipeline import Pipeline


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
        self.publisher = HealthPublisher(self.store, self.outbox)
        self.inspected: list[str] = []
        self.probe_states = RedisProbeStates(pipeline.r, pipeline.redis_url)
        self.orphans = RedisOrphanReport(pipeline.r, pipeline.redis_url)
        self.prober = HttpProber("/healthz", timeout_seconds=1.0)

    def close(self) -> None:
        for container in self.client.containers.list(all=True, filters={"label": GAME_LABEL}):
            container.remove(force=True)
        self.runtime.close()
        self.hot.dispose()

    def start(self, game_id: str, command: list[str] | None = None, *, endpoint: str = "", **options: object) -> str:
        """Run an engine container labelled for ``game_id`` and register it as running."""
        container = self.client.containers.run(
            ENGINE_IMAGE, command, detach=True, network_mode="host", labels={GAME_LABEL: game_id}, **options
        )
        self.pipeline.add_running_engine(game_id, str(container.id), endpoint)
        return str(container.id)

    def publish(self, event: HealthEvent) -> object:
        return self.publisher.publish(event)

    def sweep(self) -> SweepPlan:
        plan = plan_inspect_sweep(self.records, self.runtime, self.baselines, now_ms=int(time.time() * 1000))
        for game_id, container_id, down_seq in plan.to_inspect:
            self.inspected.append(game_id)
            inspect_container(
                self.runtime,
                self.baselines,
                self.publisher,
                records=self.records,
                game_id=game_id,
                container_id=container_id,
                now_ms=int(time.time() * 1000),
                down_seq=down_seq,
            )
        return plan

    def publish_loss(self, event: HealthEvent) -> object | None:
        return self.publisher.publish_loss(event)

    def reconcile(self) -> Reconciliation:
        return reconcile(
            self.records, self.records, self.runtime, self.orphans, self.publisher, now_ms=int(time.time() * 1000)
        )

    def record_status(self, game_id: str) -> str:
        with self.pipeline.engine.connect() as conn:
            return str(
                conn.execute(
                    text("SELECT status FROM rtmanager.runtime_records WHERE game_id = :g"), {"g": game_id}
                ).scalar_one()
            )

    def probe_sweep(self, thresholds: ProbeThresholds, grace_seconds: float = 0.0) -> ProbePlan:
        plan = plan_probe_sweep(self.records, self.runtime, self.probe_states, grace_seconds=grace_seconds)
        for game_id, container_id, endpoint, down_seq in plan.to_probe:
            probe_engine(
                self.prober,
                self.probe_states,
                self.publisher,
                down_seq=down_seq,
                game_id=game_id,
                container_id=container_id,
                endpoint=endpoint,
                thresholds=thresholds,
                now_ms=int(time.time() * 1000),
            )
        return plan

    def event_types(self, game_id: str) -> list[str]:
        entries = cast(list[tuple[str, dict[str, str]]], self.pipeline.r.xrange(HEALTH_EVENTS_STREAM))
        return [f["event_type"] for _, f in entries if f["game_id"] == game_id]

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


def until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def new_game_id() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"
