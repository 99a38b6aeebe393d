"""What the Docker benchmarks stand on: the bench Redis database, a fresh database, a private dockerd."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import redis
from sqlalchemy import Engine, create_engine

from galaxy_tasks.adapters.postgres.migrate import upgrade
from galaxy_tasks.demo.dockerd import private_dockerd
from galaxy_tasks.demo.engine_image import build_engine_image
from galaxy_tasks.testing.services import drop_database, fresh_database_url


@dataclass
class DockerWorld:
    r: redis.Redis
    redis_url: str
    database_url: str
    engine: Engine
    docker_host: str
    client: docker.DockerClient

    def cluster_env(self, metrics_dir: Path, **settings: str) -> dict[str, str]:
        """The environment of the benchmark's celery processes: this world's services, plus ``settings``."""
        return {
            "GALAXY_REDIS_URL": self.redis_url,
            "GALAXY_BROKER_URL": self.redis_url,
            "GALAXY_DATABASE_URL": self.database_url,
            "GALAXY_METRICS_DIR": str(metrics_dir),
            "DOCKER_HOST": self.docker_host,
            **settings,
        }


@contextmanager
def docker_world(redis_url: str) -> Iterator[DockerWorld]:
    """Flush the bench Redis database, migrate a new database, start a dockerd with the engine image.

    Everything is undone on the way out, also when the benchmark fails: the
    containers and the daemon (by pid), the database (dropped).
    """
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.flushdb()
    database_url = fresh_database_url()
    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        with private_dockerd() as host:
            client = docker.DockerClient(base_url=host, timeout=120)
            try:
                build_engine_image(client)
                yield DockerWorld(r, redis_url, database_url, engine, host, client)
            finally:
                client.close()
    finally:
        engine.dispose()
        drop_database(database_url)
        r.close()
