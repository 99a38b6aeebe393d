"""A real Docker Engine for the tests: a private dockerd, and the locally built engine image.

No registry is reachable, so the engine image is built here
(``galaxy_tasks.demo.engine_image``: busybox only, ``httpd`` on a loopback
port); tests run it with host networking and use ``sh`` to make it exit,
allocate memory, fail a HEALTHCHECK or restart.

The daemon is the test session's own (``galaxy_tasks.demo.dockerd``: data
root, exec root, pid file and socket in a temporary folder, no bridge and no
iptables), started on first use and ended by pid at the end of the session, or
``GALAXY_TEST_DOCKER_HOST`` when set.  Nothing falls back to the machine's
default socket: a test that needs Docker fails loudly when no daemon can be had.
"""

from __future__ import annotations

import os

import docker

from galaxy_tasks.demo.dockerd import PrivateDockerd, private_dockerd
from galaxy_tasks.demo.engine_image import ENGINE_HEALTH_PATH, ENGINE_IMAGE, build_engine_image

DOCKER_HOST = os.environ.get("GALAXY_TEST_DOCKER_HOST", "")

__all__ = [
    "DOCKER_HOST",
    "ENGINE_HEALTH_PATH",
    "ENGINE_IMAGE",
    "PrivateDockerd",
    "build_engine_image",
    "private_dockerd",
    "require_docker",
]


def require_docker(host: str) -> docker.DockerClient:
    client = docker.DockerClient(base_url=host, timeout=60)
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        raise RuntimeError(f"no Docker Engine answers at {host}: {exc}") from exc
    return client
