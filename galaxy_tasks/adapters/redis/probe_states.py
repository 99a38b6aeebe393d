"""Per-game probe streaks in Redis, shared by every worker (so a worker restart resets nothing)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict

import redis

from galaxy_tasks.adapters.redis.client import translated_errors
from galaxy_tasks.contract import PROBE_STATES_KEY
from galaxy_tasks.domain.rtmanager.probe import ProbeState


class RedisProbeStates:
    def __init__(self, client: redis.Redis, redis_url: str, key: str = PROBE_STATES_KEY) -> None:
        self._r = client
        self._url = redis_url
        self._key = key

    def get(self, game_id: str) -> ProbeState | None:
        with translated_errors(self._url):
            raw = self._r.hget(self._key, game_id)
        return None if raw is None else ProbeState(**json.loads(raw))

    def put(self, game_id: str, state: ProbeState) -> None:
        with translated_errors(self._url):
            self._r.hset(self._key, game_id, json.dumps(asdict(state)))

    def prune(self, keep: Iterable[str]) -> int:
        wanted = set(keep)
        with translated_errors(self._url):
            stale = [g for g in self._r.hkeys(self._key) if str(g) not in wanted]
            return int(self._r.hdel(self._key, *stale)) if stale else 0
