"""The Docker events listener's shared state in Redis: its position."""

from __future__ import annotations

import json

import redis

from galaxy_tasks.adapters.redis.client import translated_errors
from galaxy_tasks.contract import DOCKER_EVENTS_POSITION_KEY, on_host
from galaxy_tasks.domain.rtmanager.docker_events import EventPosition


class RedisDockerEventsState:
    def __init__(self, client: redis.Redis, redis_url: str, host_name: str = "") -> None:
        self._r = client
        self._url = redis_url
        self._position_key = on_host(DOCKER_EVENTS_POSITION_KEY, host_name)

    def load(self) -> EventPosition | None:
        with translated_errors(self._url):
            raw = self._r.get(self._position_key)
        if raw is None:
            return None
        data = json.loads(raw)
        since = data.get("since_nano")
        return EventPosition(int(data["time_nano"]), frozenset(data["keys"]), None if since is None else int(since))

    def save(self, position: EventPosition) -> None:
        value = json.dumps(
            {"time_nano": position.time_nano, "keys": sorted(position.keys), "since_nano": position.since_nano}
        )
        with translated_errors(self._url):
            self._r.set(self._position_key, value)
