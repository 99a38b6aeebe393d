"""Work-arounds for upstream defects, each with its reason and how to know it can go.

1. kombu 5.7.0 with celery 5.7.0: when a worker loses its Redis broker connection,
celery collects the connection, which drops the transport's ``client`` (and the
channel's ``connection``).  Whatever then still talks to Redis through such a
channel — restoring the channel's unacked messages when it is closed, acking a
task that finished meanwhile — builds a new Redis client from that ``None``
and the ``AttributeError`` escapes kombu's connection-error handling and kills
the worker ("Unrecoverable error: 'NoneType' object has no attribute
'hostname'" / "... 'client'").  Raising Redis's own ``ConnectionError`` there
instead lets kombu treat it as the connection loss it is: the restore is
skipped, the ack is logged as failed, and the messages, still in kombu's
unacked index, come back through the visibility-timeout sweep (every task is
idempotent).  Remove when a kombu release guards ``Channel._connparams``
against a collected transport.

2. kombu 5.7.0's Redis channel builds a new ``redis.Redis`` for every command it
sends (``Channel.conn_or_acquire`` → ``_create_client``), and redis-py 8.1
builds the ~170-entry response-callback table of every new client from
scratch (redis/redis-py#3624; fix proposed in redis/redis-py#4124).  That was
about 0.35 ms of CPU per client, two per published task and more per ack:
the largest single cost of a small task on both the publishing and the
consuming side.  A ``redis.Redis`` holds no connection of its own (each
command checks one out of the pool) and is safe to share, so each channel
keeps one synchronous client per connection pool and hands it out again; a
new pool (after a reconnect) gets a new client.  The asynchronous client
(the event loop's BRPOP) is left alone.  Remove when redis-py copies a cached
callback table instead of rebuilding it, or kombu reuses its clients.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions
from kombu.transport import redis as kombu_redis

_original_connparams: Any = kombu_redis.Channel._connparams
_original_create_client: Any = kombu_redis.Channel._create_client
_CACHED_CLIENT = "_galaxy_sync_client"


def _connparams(self: Any, asynchronous: bool = False) -> Any:
    transport = getattr(self, "connection", None)
    if transport is None or getattr(transport, "client", None) is None:
        raise redis.exceptions.ConnectionError("the broker connection was collected after a connection loss")
    return _original_connparams(self, asynchronous=asynchronous)


def _create_client(self: Any, asynchronous: bool = False) -> Any:
    if asynchronous:
        return _original_create_client(self, asynchronous=True)
    pool = self.pool
    cached = self.__dict__.get(_CACHED_CLIENT)
    if cached is not None and cached.connection_pool is pool:
        return cached
    client = _original_create_client(self)
    self.__dict__[_CACHED_CLIENT] = client
    return client


def install() -> None:
    if kombu_redis.Channel._connparams is not _connparams:
        setattr(kombu_redis.Channel, "_connparams", _connparams)  # noqa: B010  (monkeypatch, see above)
    if kombu_redis.Channel._create_client is not _create_client:
        setattr(kombu_redis.Channel, "_create_client", _create_client)  # noqa: B010  (monkeypatch, see above)
