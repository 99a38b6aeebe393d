"""Fixtures of the integration and end-to-end tests: a fresh database and Redis per test, real Celery processes.

Unit tests use none of them and need no service."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from galaxy_tasks.adapters.postgres.migrate import upgrade
from tests.support.cluster import Cluster
from tests.support.pipeline import Pipeline
from tests.support.services import (
    REDIS_URL,
    drop_database,
    ephemeral_redis,
    fresh_database_url,
    require_postgres,
    require_redis,
)


@pytest.fixture(scope="session")
def session_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``GALAXY_TEST_REDIS_URL`` if set, else a private redis-server for this session."""
    if REDIS_URL:
        yield REDIS_URL
        return
    with ephemeral_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def pipeline(tmp_path: Path, session_redis_url: str) -> Iterator[Pipeline]:
    """An isolated pipeline: a new migrated database, the test Redis flushed."""
    require_postgres()
    require_redis(session_redis_url).flushdb()
    database_url = fresh_database_url()
    upgrade(database_url)
    pipe = Pipeline(
        redis_url=session_redis_url,
        database_url=database_url,
        metrics_dir=tmp_path / "metrics",
        broker_url=os.environ.get("GALAXY_TEST_BROKER_URL", ""),
    )
    pipe.metrics_dir.mkdir()
    yield pipe
    pipe.close()
    drop_database(database_url)


@pytest.fixture
def cluster(pipeline: Pipeline, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Celery processes of the test; on failure their log tails are printed."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    running = Cluster(env=dict(pipeline.env), log_dir=log_dir)
    yield running
    running.stop_all()
    for log in sorted(log_dir.glob("*.log")):
        tail = log.read_text(errors="replace")[-4000:]
        print(f"===== {log.name} (tail) =====\n{tail}")
