"""Redis's clock: the one that stamps every stream entry id, so ages measured on it need no other clock."""

from __future__ import annotations

import redis

from galaxy_tasks.adapters.redis.client import translated_errors


class RedisStreamClock:
    """``StreamClock`` on Redis's ``TIME``."""

    def __init__(self, client: redis.Redis, redis_url: str) -> None:
        self._r = client
        self._url = redis_url

    def now_ms(self) -> int:
        with translated_errors(self._url):
            seconds, micros = self._r.time()
        return int(seconds) * 1000 + int(micros) // 1000
