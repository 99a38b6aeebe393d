"""Per-game inspect baselines in Redis, shared by every worker (seed ``003`` kept them in memory).

Beside them, per container, the number of crashes the events listener
published, so the inspect does not report those restarts a second time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import redis

from galaxy_tasks.adapters.redis.client import translated_errors
from galaxy_tasks.contract import ACKED_RESTARTS_PREFIX, INSPECT_BASELINES_KEY
from galaxy_tasks.domain.rtmanager.inspect import InspectBaseline

ACKED_RESTARTS_MEMORY_SECONDS = 86_400
"""Crash counts of a container outlive any inspect interval by far; a day later they are moot."""


class RedisInspectBaselines:
    def __init__(self, client: redis.Redis, redis_url: str, key: str = INSPECT_BASELINES_KEY) -> None:
        self._r = client
        self._url = redis_url
        self._key = key

    def get(self, game_id: str) -> InspectBaseline | None:
        with translated_errors(self._url):
            raw = self._r.hget(self._key, game_id)
        if raw is None:
            return None
        return _decode(raw)

    def all(self) -> dict[str, InspectBaseline]:
        with translated_errors(self._url):
            raw = self._r.hgetall(self._key)
        return {str(game_id): _decode(value) for game_id, value in raw.items()}

    def put(self, game_id: str, baseline: InspectBaseline) -> None:
        value = json.dumps(
            {
                "container_id": baseline.container_id,
                "restart_count": baseline.restart_count,
                "started_at_ms": baseline.started_at_ms,
                "acked_restarts": baseline.acked_restarts,
                "reported": baseline.reported,
            }
        )
        with translated_errors(self._url):
            self._r.hset(self._key, game_id, value)

    def drop(self, game_ids: Iterable[str]) -> int:
        stale = list(game_ids)
        with translated_errors(self._url):
            return int(self._r.hdel(self._key, *stale)) if stale else 0

    def ack_restart(self, container_id: str) -> None:
        key = f"{ACKED_RESTARTS_PREFIX}:{container_id}"
        with translated_errors(self._url):
            pipe = self._r.pipeline()
            pipe.incr(key)
            pipe.expire(key, ACKED_RESTARTS_MEMORY_SECONDS)
            pipe.execute()

    def acked_restarts(self, container_id: str) -> int:
        with translated_errors(self._url):
            raw = self._r.get(f"{ACKED_RESTARTS_PREFIX}:{container_id}")
        return 0 if raw is None else int(raw)


def _decode(raw: str | bytes) -> InspectBaseline:
    data = json.loads(raw)
    return InspectBaseline(
        data["container_id"],
        int(data["restart_count"]),
        int(data.get("started_at_ms", 0)),
        int(data.get("acked_restarts", 0)),
        str(data.get("reported", "")),
    )
