"""Fixtures of the end-to-end tests that several modules share."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.support.docker_engine import PrivateDockerd, build_engine_image


@pytest.fixture
def own_dockerd() -> Iterator[PrivateDockerd]:
    """A dockerd of this test's own (with the engine image), to stop and start again; ended by pid."""
    daemon = PrivateDockerd()
    try:
        daemon.start()
        build_engine_image(docker.DockerClient(base_url=daemon.host, timeout=60))
        yield daemon
    finally:
        daemon.close()
