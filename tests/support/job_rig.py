"""An in-process Runtime Manager job runner on the real services, for the start/stop job tests.

The job service runs in the test process against the private dockerd, the
test database and Redis; what it publishes goes through the real outboxes to
``runtime:job_results`` and ``runtime:health_events``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, cast

import docker
import redis
from sqlalchemy import text

from galaxy_tasks.adapters.docker.engines import DockerEngineContainers
from galaxy_tasks.adapters.docker.runtime import GAME_LABEL, DockerRuntime
from galaxy_tasks.adapters.postgres.jobs import PostgresJobQueue
from galaxy_tasks.adapters.postgres.outboxes import JOB_RESULT_OUTBOX_SPEC, health_events_outbox
from galaxy_tasks.adapters.postgres.stream_outbox import PostgresStreamOutbox
from galaxy_tasks.adapters.redis.job_streams import RedisJobStreams
from galaxy_tasks.contract import (
    HEALTH_EVENTS_STREAM,
    JOB_RESULTS_STREAM,
    START_JOBS_BRIDGE_KEYS,
    START_JOBS_STREAM,
    STOP_JOBS_BRIDGE_KEYS,
    STOP_JOBS_STREAM,
)
from galaxy_tasks.service.jobs import JobContext
from galaxy_tasks.testing.engines import LOOPBACK_ENGINE_SETTINGS
from tests.support.pipeline import Pipeline


class JobRig:
    def __init__(self, pipeline: Pipeline, docker_host: str, client: docker.DockerClient) -> None:
        self.pipeline = pipeline
        self.client = client
        self.runtime = DockerRuntime(docker_host)
        outbox_client = redis.Redis.from_url(pipeline.redis_url, decode_responses=True)
        self.ctx = JobContext(
            queue=PostgresJobQueue(pipeline.engine),
            streams=RedisJobStreams(
                redis.Redis.from_url(pipeline.redis_url),
                pipeline.redis_url,
                {START_JOBS_STREAM: START_JOBS_BRIDGE_KEYS.offset, STOP_JOBS_STREAM: STOP_JOBS_BRIDGE_KEYS.offset},
            ),
            engines=DockerEngineContainers(self.runtime, docker_host),
            # The sweep sees rows at once (no durability wait: test_outbox_durability is about that).
            results_outbox=PostgresStreamOutbox(
                pipeline.engine, outbox_client, pipeline.redis_url, JOB_RESULT_OUTBOX_SPEC, durable_after_ms=0
            ),
            health_outbox=PostgresStreamOutbox(
                pipeline.engine, outbox_client, pipeline.redis_url, health_events_outbox(0), durable_after_ms=0
            ),
            settings=LOOPBACK_ENGINE_SETTINGS,
            docker_retry_seconds=5,
        )

    def with_docker_at(self, host: str, retry_seconds: float) -> JobContext:
        return replace(
            self.ctx,
            engines=DockerEngineContainers(DockerRuntime(host, timeout=2), host),
            docker_retry_seconds=retry_seconds,
        )

    def close(self) -> None:
        for container in self.client.containers.list(all=True, filters={"label": GAME_LABEL}):
            container.remove(force=True)
        self.runtime.close()

    # --- what the jobs left behind -------------------------------------------------------
    def containers(self, game_id: str) -> list[Any]:
        return list(self.client.containers.list(all=True, filters={"name": f"^/galaxy-game-{game_id}$"}))

    def record(self, game_id: str) -> tuple[str, str, str, str] | None:
        with self.pipeline.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT status, current_container_id, image_ref, engine_endpoint "
                    "FROM rtmanager.runtime_records WHERE game_id = :g"
                ),
                {"g": game_id},
            ).one_or_none()
        return None if row is None else (row.status, row.current_container_id, row.image_ref, row.engine_endpoint)

    def operation_log(self, game_id: str) -> list[dict[str, Any]]:
        with self.pipeline.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT * FROM rtmanager.operation_log WHERE game_id = :g ORDER BY id"), {"g": game_id}
            ).mappings()
            return [dict(row) for row in rows]

    def results(self, game_id: str) -> list[dict[str, str]]:
        entries = cast(list[tuple[str, dict[str, str]]], self.pipeline.r.xrange(JOB_RESULTS_STREAM))
        return [fields for _, fields in entries if fields["game_id"] == game_id]

    def health_events(self, game_id: str) -> list[tuple[str, dict[str, Any]]]:
        entries = cast(list[tuple[str, dict[str, str]]], self.pipeline.r.xrange(HEALTH_EVENTS_STREAM))
        return [(f["event_type"], json.loads(f["details"])) for _, f in entries if f["game_id"] == game_id]

    def snapshot(self, game_id: str) -> tuple[str, str] | None:
        with self.pipeline.engine.connect() as conn:
            row = conn.execute(
                text("SELECT status, source FROM rtmanager.health_snapshots WHERE game_id = :g"), {"g": game_id}
            ).one_or_none()
        return None if row is None else (row.status, row.source)
