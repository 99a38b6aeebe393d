"""Reading the Docker events API in short windows, so the listener can renew its lease in between."""

from __future__ import annotations

import time
from collections.abc import Iterator

from galaxy_tasks.adapters.docker.runtime import GAME_LABEL, DockerRuntime, managed_filter, translated_errors
from galaxy_tasks.domain.rtmanager.docker_events import ContainerEvent


class DockerEventSource:
    def __init__(self, runtime: DockerRuntime, host: str = "") -> None:
        self._runtime = runtime
        self._host = host

    def read(self, *, since_nano: int, window_seconds: float) -> Iterator[ContainerEvent]:
        """Container events of managed containers from ``since_nano`` on, for ``window_seconds``.

        Docker keeps the stream open until ``until`` and sends what it had from
        ``since`` first, so one call both catches up and waits for new events;
        each is yielded as it arrives.
        """
        since = f"{since_nano // 1_000_000_000}.{since_nano % 1_000_000_000:09d}" if since_nano else None
        until = time.time() + window_seconds
        with translated_errors(self._host):
            stream = self._runtime.client.api.events(
                since=since,
                until=until,
                filters={"type": "container", "label": managed_filter(self._runtime.host_name)},
                decode=True,
            )
            for raw in stream:
                event = _decode(raw)
                if event is not None:
                    yield event


def _decode(raw: dict[str, object]) -> ContainerEvent | None:
    actor = raw.get("Actor") or {}
    attributes = dict(actor.get("Attributes") or {}) if isinstance(actor, dict) else {}
    container_id = str(raw.get("id") or (actor.get("ID") if isinstance(actor, dict) else "") or "")
    action = str(raw.get("Action") or raw.get("status") or "")
    game_id = str(attributes.get(GAME_LABEL, ""))
    if not container_id or not action or not game_id:
        return None
    exit_code = attributes.get("exitCode")
    time_nano = raw.get("timeNano") or int(str(raw.get("time") or 0)) * 1_000_000_000
    return ContainerEvent(
        container_id,
        game_id,
        action,
        int(str(time_nano)),
        None if exit_code is None else int(str(exit_code)),
    )
