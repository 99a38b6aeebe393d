"""The reconciler's last list of orphan containers, kept in Redis for ``galaxy-tasks status``."""

from __future__ import annotations

import json
from typing import Any

import redis

from galaxy_tasks.adapters.redis.client import translated_errors
from galaxy_tasks.contract import ORPHANS_KEY
from galaxy_tasks.ports.rtmanager import ListedContainer


class RedisOrphanReport:
    def __init__(self, client: redis.Redis, redis_url: str, key: str = ORPHANS_KEY) -> None:
        self._r = client
        self._url = redis_url
        self._key = key

    def save(self, orphans: list[ListedContainer], *, suspects: list[str], now_ms: int) -> None:
        value = json.dumps(
            {
                "seen_at_ms": now_ms,
                "suspects": suspects,
                "containers": [
                    {"container_id": o.container_id, "game_id": o.game_id, "state": o.state} for o in orphans
                ],
            }
        )
        with translated_errors(self._url):
            self._r.set(self._key, value)

    def suspects(self) -> set[str]:
        report = self.load()
        return set() if report is None else {str(c) for c in report.get("suspects", [])}

    def load(self) -> dict[str, Any] | None:
        with translated_errors(self._url):
            raw = self._r.get(self._key)
        return None if raw is None else dict(json.loads(raw))
