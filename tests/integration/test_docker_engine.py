"""The tests' Docker Engine and engine image behave as the health-monitoring tests rely on.

Host networking, loopback ports only: the engine serves its health path on
127.0.0.1, ``sh`` can make it exit with a code, and a memory hog is OOM-killed
under ``--memory``.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator

import docker
import pytest

from galaxy_tasks.testing.services import free_loopback_port
from tests.support.docker_engine import ENGINE_HEALTH_PATH, ENGINE_IMAGE

pytestmark = pytest.mark.integration

TEST_LABEL = "galaxy.test"


@pytest.fixture
def docker_engine(docker_client: docker.DockerClient) -> Iterator[docker.DockerClient]:
    yield docker_client
    for container in docker_client.containers.list(all=True, filters={"label": TEST_LABEL}):
        container.remove(force=True)


def _wait_for(container: docker.models.containers.Container, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        if container.status == status:
            return
        assert time.monotonic() < deadline, f"{container.name} is {container.status}, not {status}"
        time.sleep(0.1)


def test_the_engine_image_serves_its_health_path_on_a_loopback_port(docker_engine: docker.DockerClient) -> None:
    port = free_loopback_port()
    docker_engine.containers.run(
        ENGINE_IMAGE, detach=True, network_mode="host", environment={"ENGINE_PORT": str(port)}, labels=[TEST_LABEL]
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{ENGINE_HEALTH_PATH}", timeout=2) as reply:
                assert reply.status == 200
                assert reply.read() == b"ok\n"
                return
        except OSError:
            assert time.monotonic() < deadline, "the engine never served its health path"
            time.sleep(0.1)


def test_an_engine_told_to_exit_3_exits_with_code_3(docker_engine: docker.DockerClient) -> None:
    container = docker_engine.containers.run(
        ENGINE_IMAGE, ["sh", "-c", "exit 3"], detach=True, network_mode="host", labels=[TEST_LABEL]
    )
    _wait_for(container, "exited")
    assert container.attrs["State"]["ExitCode"] == 3
    assert container.attrs["State"]["OOMKilled"] is False


def test_a_memory_hog_is_oom_killed_under_a_memory_limit(docker_engine: docker.DockerClient) -> None:
    container = docker_engine.containers.run(
        ENGINE_IMAGE,
        ["sh", "-c", "head -c 200000000 /dev/zero | tail"],
        detach=True,
        network_mode="host",
        mem_limit="16m",
        memswap_limit="16m",
        labels=[TEST_LABEL],
    )
    _wait_for(container, "exited")
    assert container.attrs["State"]["OOMKilled"] is True
    assert container.attrs["State"]["ExitCode"] == 137
