"""The Docker Engine as the Runtime Manager sees it: managed containers, listed and inspected.

The client follows ``DOCKER_HOST`` (the SDK's own variable, SPEC §2).  Managed
containers carry the label ``galaxy.game_id`` (SPEC §5, fixed); a sweep lists
them in one filtered call and inspects only those that need it.  Docker
being unreachable is a ``BackendUnavailable`` (retried), a missing container
is ``None`` (the reconciler's business).
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from datetime import datetime

import docker
import docker.errors

from galaxy_tasks.adapters.docker.errors import docker_errors, explanation
from galaxy_tasks.domain.errors import DockerUnavailable
from galaxy_tasks.domain.rtmanager.inspect import InspectObservation
from galaxy_tasks.ports.rtmanager import ListedContainer

GAME_LABEL = "galaxy.game_id"
HOST_LABEL = "galaxy.docker_host"
"""With several Docker hosts: the ``GALAXY_DOCKER_HOST_NAME`` whose RTM worker manages the container."""


def managed_filter(host_name: str) -> list[str]:
    """Docker ``label`` filters of the containers this host's Runtime Manager manages."""
    return [GAME_LABEL, f"{HOST_LABEL}={host_name}"] if host_name else [GAME_LABEL]


def translated_errors(host: str) -> AbstractContextManager[None]:
    """Reads for the observers: Docker not answering, or answering with a server error, is unavailable."""
    return docker_errors(host, server_errors_are_unavailable=True)


_DOCKER_TIME = re.compile(
    r"^(?P<base>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)$"
)


def docker_time_ms(value: str) -> int:
    """Docker's RFC 3339 time with nanoseconds (``2026-11-22T20:11:20.896570552Z``) in ms; 0 if unset."""
    match = _DOCKER_TIME.match(value or "")
    if match is None or value.startswith("0001-"):
        return 0
    fraction = (match.group("fraction") or "0")[:6]
    zone = "+00:00" if match.group("zone") == "Z" else match.group("zone")
    return int(datetime.fromisoformat(f"{match.group('base')}.{fraction}{zone}").timestamp() * 1000)


class DockerRuntime:
    """Listing and inspecting managed containers."""

    def __init__(self, host: str = "", timeout: float = 10.0, *, host_name: str = "") -> None:
        self._host = host
        self._timeout = timeout
        self.host_name = host_name
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            with translated_errors(self._host):
                self._client = (
                    docker.DockerClient(base_url=self._host, timeout=int(self._timeout))
                    if self._host
                    else docker.from_env(timeout=int(self._timeout))
                )
        return self._client

    def list_managed(self) -> dict[str, ListedContainer]:
        """Every container with the game label, running or not, by container id (one API call)."""
        with translated_errors(self._host):
            rows = self.client.api.containers(all=True, filters={"label": managed_filter(self.host_name)})
        return {
            row["Id"]: ListedContainer(
                row["Id"], (row.get("Labels") or {}).get(GAME_LABEL, ""), row.get("State", ""), row.get("Status", "")
            )
            for row in rows
        }

    def inspect(self, container_id: str) -> InspectObservation | None:
        """``None`` when the container does not exist (any more)."""
        try:
            with translated_errors(self._host):
                attrs = self.client.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:  # an answer other than "not found" about a container it lists
            raise DockerUnavailable(f"inspect {container_id}: {explanation(exc)}") from exc
        state = attrs.get("State") or {}
        health = (state.get("Health") or {}).get("Status", "")
        return InspectObservation(
            attrs["Id"],
            state.get("Status", ""),
            int(attrs.get("RestartCount", 0)),
            health,
            docker_time_ms(state.get("StartedAt", "")),
            bool(state.get("OOMKilled", False)),
            int(state.get("ExitCode", 0) or 0),
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
