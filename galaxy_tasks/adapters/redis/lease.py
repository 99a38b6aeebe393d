"""A cluster-wide lease in Redis: one holder, renewed while it runs, expiring if it dies.

``SET NX PX`` takes it; renewal and release check the holder's token in a Lua
script so a holder whose lease already expired (and was taken over) can
neither extend nor delete the new holder's lease.
"""

from __future__ import annotations

import os
import socket
import uuid

import redis

from galaxy_tasks.adapters.redis.client import translated_errors

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def new_holder_token() -> str:
    """``host:pid:random`` — readable in ``galaxy-tasks status``, unique per run."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RedisLease:
    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float, url: str, holder: str | None = None) -> None:
        self._r = client
        self.key = key
        self._ttl_ms = int(ttl_seconds * 1000)
        self._url = url
        self._holder = holder or new_holder_token()
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @property
    def holder(self) -> str:
        return self._holder

    def acquire(self) -> bool:
        with translated_errors(self._url):
            return bool(self._r.set(self.key, self._holder, nx=True, px=self._ttl_ms))

    def renew(self) -> bool:
        with translated_errors(self._url):
            return bool(self._renew(keys=[self.key], args=[self._holder, self._ttl_ms]))

    def release(self) -> None:
        with translated_errors(self._url):
            self._release(keys=[self.key], args=[self._holder])


class RedisLeaseView:
    """What the supervisor reads and claims in Redis."""

    def __init__(self, client: redis.Redis, url: str) -> None:
        self._r = client
        self._url = url

    def holder_of(self, lease_key: str) -> str | None:
        with translated_errors(self._url):
            holder = self._r.get(lease_key)
        return None if holder is None else str(holder)

    def claim_launch(self, marker_key: str, ttl_seconds: float) -> bool:
        with translated_errors(self._url):
            return bool(self._r.set(marker_key, "1", nx=True, px=int(ttl_seconds * 1000)))
