"""Work-arounds for upstream defects, each with its reason and how to know it can go.

kombu 5.7.0 with celery 5.7.0: when a worker loses its Redis broker connection,
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
"""

from __future__ import annotations

from typing import Any

import redis.exceptions
from kombu.transport import redis as kombu_redis

_original_connparams: Any = kombu_redis.Channel._connparams


def _connparams(self: Any, asynchronous: bool = False) -> Any:
    transport = getattr(self, "connection", None)
    if transport is None or getattr(transport, "client", None) is None:
        raise redis.exceptions.ConnectionError("the broker connection was collected after a connection loss")
    return _original_connparams(self, asynchronous=asynchronous)


def install() -> None:
    if kombu_redis.Channel._connparams is not _connparams:
        setattr(kombu_redis.Channel, "_connparams", _connparams)  # noqa: B010  (monkeypatch, see above)
