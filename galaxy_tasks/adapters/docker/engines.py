"""Running and stopping engine containers for the start/stop jobs.

Docker unreachable (connection refused, socket gone, timeout) is
``BackendUnavailable`` — the job retries it for a bounded time; an answer that
refuses (no such image, a bad reference, an engine that cannot start) is
``JobFailed`` with the SPEC's code and Docker's own words.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import docker
import docker.errors
from docker.utils import parse_repository_tag

from galaxy_tasks.adapters.docker.errors import docker_errors, explanation
from galaxy_tasks.adapters.docker.runtime import GAME_LABEL, HOST_LABEL, DockerRuntime
from galaxy_tasks.domain.errors import DockerUnavailable
from galaxy_tasks.domain.rtmanager.jobs import ENGINE_TMPFS, ContainerView, EngineIsolation, JobErrorCode, JobFailed
from galaxy_tasks.ports.jobs import EngineSpec


class DockerEngineContainers:
    """``EngineContainers`` on the Docker SDK's low-level API (one request per step, nothing hidden)."""

    def __init__(self, runtime: DockerRuntime, host: str = "") -> None:
        self._runtime = runtime
        self._host = host

    def find(self, name: str) -> ContainerView | None:
        with docker_errors(self._host):
            try:
                attrs = self._runtime.client.api.inspect_container(name)
            except docker.errors.NotFound:
                return None
            except docker.errors.APIError as exc:
                raise DockerUnavailable(f"inspect {name}: {explanation(exc)}") from exc
        state = str((attrs.get("State") or {}).get("Status", ""))
        return ContainerView(str(attrs["Id"]), state, str((attrs.get("Config") or {}).get("Image") or ""))

    def replace(self, spec: EngineSpec) -> str:
        with docker_errors(self._host):
            api = self._runtime.client.api
            self._remove(spec.name)
            self._ensure_image(spec)
            try:
                created = api.create_container(
                    spec.image_ref,
                    name=spec.name,
                    labels={GAME_LABEL: spec.game_id, **({HOST_LABEL: spec.docker_host} if spec.docker_host else {})},
                    environment={"GALAXY_GAME_ID": spec.game_id, "GALAXY_ENGINE_ENDPOINT": spec.engine_endpoint},
                    user=spec.isolation.user or None,
                    host_config=api.create_host_config(
                        mem_limit=spec.memory_limit,
                        nano_cpus=spec.nano_cpus,
                        restart_policy=dict(spec.restart_policy),
                        network_mode=spec.network,
                        **_confinement(spec.isolation),
                    ),
                )
            except docker.errors.ImageNotFound as exc:
                raise JobFailed(JobErrorCode.IMAGE_NOT_FOUND, f"image {spec.image_ref}: {explanation(exc)}") from exc
            except docker.errors.APIError as exc:
                raise _refused(spec, exc, "create") from exc
            container_id = str(created["Id"])
            try:
                api.start(container_id)
            except docker.errors.APIError as exc:
                with suppress(docker.errors.APIError):
                    api.remove_container(container_id, force=True)
                raise _refused(spec, exc, "start") from exc
        return container_id

    def stop_and_remove(self, container_id: str, timeout_seconds: float) -> None:
        with docker_errors(self._host):
            api = self._runtime.client.api
            try:
                api.stop(container_id, timeout=max(0, round(timeout_seconds)))
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                raise JobFailed(
                    JobErrorCode.CONTAINER_STOP_FAILED, f"stop {container_id[:12]}: {explanation(exc)}"
                ) from exc
            try:
                api.remove_container(container_id, force=True)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if exc.status_code == 409 and "already in progress" in explanation(exc):
                    return
                raise JobFailed(
                    JobErrorCode.CONTAINER_STOP_FAILED, f"remove {container_id[:12]}: {explanation(exc)}"
                ) from exc

    def _remove(self, name: str) -> None:
        """Remove what a died container or an interrupted earlier attempt left under the name."""
        try:
            self._runtime.client.api.remove_container(name, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code == 409 and "already in progress" in explanation(exc):
                raise DockerUnavailable(f"{name} is still being removed") from exc
            raise JobFailed(
                JobErrorCode.CONTAINER_START_FAILED, f"could not remove the old {name}: {explanation(exc)}"
            ) from exc

    def _ensure_image(self, spec: EngineSpec) -> None:
        api = self._runtime.client.api
        try:
            api.inspect_image(spec.image_ref)
            return
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code == 400:
                raise JobFailed(
                    JobErrorCode.INVALID_REQUEST, f"image_ref {spec.image_ref!r}: {explanation(exc)}"
                ) from exc
            raise
        if not spec.pull_missing_image:
            raise JobFailed(
                JobErrorCode.IMAGE_NOT_FOUND,
                f"image {spec.image_ref} is not on the Docker host and pulling is off (GALAXY_ENGINE_IMAGE_PULL=never)",
            )
        repository, tag = parse_repository_tag(spec.image_ref)
        errors: list[str] = []
        try:
            # A pull can fail after its 200 (in the progress stream): read it through and check the result.
            for line in api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                if isinstance(line, dict) and line.get("error"):
                    errors.append(str(line["error"]))
            api.inspect_image(spec.image_ref)
        except docker.errors.APIError as exc:
            errors.append(explanation(exc))
            raise JobFailed(
                JobErrorCode.IMAGE_NOT_FOUND,
                f"image {spec.image_ref} is not on the Docker host and could not be pulled: {'; '.join(errors)}",
            ) from exc


def _confinement(isolation: EngineIsolation) -> dict[str, Any]:
    """The host-config options of :class:`EngineIsolation` (every capability dropped, then some given back)."""
    options: dict[str, Any] = {"cap_drop": ["ALL"], "cap_add": list(isolation.cap_add) or None}
    if isolation.pids_limit:
        options["pids_limit"] = isolation.pids_limit
    if isolation.no_new_privileges:
        options["security_opt"] = ["no-new-privileges:true"]
    if isolation.read_only_rootfs:
        options["read_only"] = True
        options["tmpfs"] = dict(ENGINE_TMPFS)
    return options


def _refused(spec: EngineSpec, exc: docker.errors.APIError, step: str) -> JobFailed:
    text = explanation(exc)
    if exc.status_code == 400 and "reference format" in text:
        return JobFailed(JobErrorCode.INVALID_REQUEST, f"image_ref {spec.image_ref!r}: {text}")
    hint = ""
    if "network" in text and "not found" in text:
        hint = f" (create it: docker network create {spec.network}, or set GALAXY_ENGINE_NETWORK)"
    return JobFailed(JobErrorCode.CONTAINER_START_FAILED, f"{step} {spec.name} from {spec.image_ref}: {text}{hint}")
