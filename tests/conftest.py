"""Fixtures of the integration and end-to-end tests: a fresh database and Redis per test, real Celery processes.

Unit tests use none of them and need no service."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from galaxy_tasks.adapters.postgres.migrate import upgrade
from galaxy_tasks.testing.cluster import Cluster
from galaxy_tasks.testing.services import drop_database, fresh_database_url, require_postgres, require_redis
from tests.support.docker_engine import DOCKER_HOST, build_engine_image, private_dockerd, require_docker
from tests.support.pipeline import Pipeline
from tests.support.private_services import PrivateRedis
from tests.support.services import REDIS_URL, ephemeral_redis, rabbitmq_vhost


@pytest.fixture(scope="session")
def session_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``GALAXY_TEST_REDIS_URL`` if set, else a private redis-server for this session."""
    if REDIS_URL:
        yield REDIS_URL
        return
    with ephemeral_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """``GALAXY_TEST_DOCKER_HOST`` if set, else a private dockerd started for this session."""
    if DOCKER_HOST:
        require_docker(DOCKER_HOST)
        yield DOCKER_HOST
        return
    with private_dockerd() as host:
        yield host


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> Iterator[docker.DockerClient]:
    """A client of the test Docker Engine, with the engine image built into it."""
    client = require_docker(docker_host)
    build_engine_image(client)
    yield client
    client.close()


@pytest.fixture
def pipeline(tmp_path: Path, session_redis_url: str, request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    """An isolated pipeline: a new migrated database, the test Redis flushed; the broker as parametrized."""
    require_postgres()
    require_redis(session_redis_url).flushdb()
    with contextlib.ExitStack() as stack:
        broker_url = os.environ.get("GALAXY_TEST_BROKER_URL", "")
        if getattr(request, "param", "redis") == "rabbitmq":
            broker_url = stack.enter_context(rabbitmq_vhost())
        database_url = fresh_database_url()
        upgrade(database_url)
        stack.callback(drop_database, database_url)
        pipe = Pipeline(
            redis_url=session_redis_url,
            database_url=database_url,
            metrics_dir=tmp_path / "metrics",
            broker_url=broker_url,
        )
        pipe.metrics_dir.mkdir()
        stack.callback(pipe.close)
        yield pipe


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


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A Redis of this test alone, with the append-only file fsynced on every write.

    Production Redis runs with AOF persistence; without it a restart empties
    the streams, the broker queues and the offsets, and "nothing lost" could
    not hold for any design.
    """
    server = PrivateRedis(data_dir=tmp_path / "redis-data", log_path=tmp_path / "redis-server.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        print(f"===== redis-server.log (tail) =====\n{server.log_tail()}")


@pytest.fixture
def redis_outage_pipeline(private_redis: PrivateRedis, tmp_path: Path) -> Iterator[Pipeline]:
    """Streams, offsets and broker on the private Redis; a new migrated database on the shared PostgreSQL."""
    require_postgres()
    database_url = fresh_database_url()
    try:
        upgrade(database_url)
        pipe = Pipeline(redis_url=private_redis.url, database_url=database_url, metrics_dir=tmp_path / "metrics")
        pipe.metrics_dir.mkdir()
        try:
            yield pipe
        finally:
            pipe.close()
    finally:
        drop_database(database_url)
