"""Fixtures shared by the integration tests of the Runtime Manager (health sweeps, start/stop jobs)."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.support.job_rig import JobRig
from tests.support.pipeline import Pipeline
from tests.support.rtm_rig import Rig


@pytest.fixture
def rig(pipeline: Pipeline, docker_host: str, docker_client: docker.DockerClient) -> Iterator[Rig]:
    """An in-process Runtime Manager on the private dockerd, the test database and Redis."""
    made = Rig(pipeline, docker_host, docker_client)
    yield made
    made.close()


@pytest.fixture
def jobs(pipeline: Pipeline, docker_host: str, docker_client: docker.DockerClient) -> Iterator[JobRig]:
    """The start/stop job service in-process on the private dockerd, the test database and Redis."""
    made = JobRig(pipeline, docker_host, docker_client)
    yield made
    made.close()
