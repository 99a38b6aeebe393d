"""Work-arounds for upstream defects, each with its reason and how to know it can go.

kombu 5.7.0 with celery 5.7.0: when a worker loses its Redis broker connection,
celery collects the connection (which drops the transport's ``client``) and then
closes it; closing the channel restores the channel's unacked messages through
a new Redis client built from ``transport.client`` — ``None`` by then — and the
``AttributeError`` escapes ``ignore_errors`` and kills the worker
("Unrecoverable error: 'NoneType' object has no attribute 'hostname'").  Those
messages are still in kombu's unacked index, and the periodic visibility-timeout
sweep restores them, so the restore at close can be skipped safely when there
is no client to do it with.  Remove when a kombu release guards
``Channel._connparams`` against a collected transport.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis

_original_restore_unacked: Any = kombu_redis.QoS.restore_unacked


def _restore_unacked(self: Any, client: Any = None) -> Any:
    transport = getattr(self.channel, "connection", None)
    if client is None and getattr(transport, "client", None) is None:
        return None  # the broker connection is gone; the visibility-timeout sweep restores them
    return _original_restore_unacked(self, client)


def install() -> None:
    if kombu_redis.QoS.restore_unacked is not _restore_unacked:
        setattr(kombu_redis.QoS, "restore_unacked", _restore_unacked)  # noqa: B010  (monkeypatch, see above)
