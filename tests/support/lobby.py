"""The Lobby's side of the job streams, and what the jobs left in PostgreSQL, Redis and Docker."""

from __future__ import annotations

from typing import Any, cast

import docker
from sqlalchemy import text

from galaxy_tasks.contract import HEALTH_EVENTS_STREAM, JOB_RESULTS_STREAM, START_JOBS_STREAM, STOP_JOBS_STREAM
from galaxy_tasks.testing.cluster import wait_until
from tests.support.docker_engine import ENGINE_IMAGE
from tests.support.pipeline import Pipeline


class Lobby:
    """The Lobby's side of the job streams, and what the jobs left in PostgreSQL and Docker."""

    def __init__(self, pipeline: Pipeline, client: docker.DockerClient) -> None:
        self.pipeline = pipeline
        self.client = client

    def start(self, game: str, image: str = ENGINE_IMAGE) -> str:
        return str(self.pipeline.r.xadd(START_JOBS_STREAM, {"game_id": game, "image_ref": image}))

    def stop(self, game: str, reason: str = "finished") -> str:
        return str(self.pipeline.r.xadd(STOP_JOBS_STREAM, {"game_id": game, "reason": reason}))

    def results(self, game: str) -> list[dict[str, str]]:
        entries = cast(list[tuple[str, dict[str, str]]], self.pipeline.r.xrange(JOB_RESULTS_STREAM))
        return [fields for _, fields in entries if fields["game_id"] == game]

    def wait_results(self, game: str, count: int, timeout: float = 60) -> list[dict[str, str]]:
        wait_until(lambda: len(self.results(game)) >= count, timeout=timeout, what=f"{count} job results of {game}")
        return self.results(game)

    def containers(self, game: str) -> list[Any]:
        return list(self.client.containers.list(all=True, filters={"name": f"^/galaxy-game-{game}$"}))

    def record(self, game: str) -> tuple[str, str] | None:
        with self.pipeline.engine.connect() as conn:
            row = conn.execute(
                text("SELECT status, current_container_id FROM rtmanager.runtime_records WHERE game_id = :g"),
                {"g": game},
            ).one_or_none()
        return None if row is None else (row.status, row.current_container_id)

    def log_rows(self) -> list[dict[str, Any]]:
        with self.pipeline.engine.connect() as conn:
            return [dict(r) for r in conn.execute(text("SELECT * FROM rtmanager.operation_log ORDER BY id")).mappings()]

    def health_kinds(self, game: str) -> list[str]:
        entries = cast(list[tuple[str, dict[str, str]]], self.pipeline.r.xrange(HEALTH_EVENTS_STREAM))
        return [f["event_type"] for _, f in entries if f["game_id"] == game]
