"""Redis clients and error translation.

Clients are built per process with socket timeouts, so a Redis that stops
answering turns into a :class:`BackendUnavailable` instead of a hung worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.exceptions


def build_redis(url: str, *, socket_timeout: float, decode_responses: bool = True) -> redis.Redis:
    """A client for ``url``; ``decode_responses=False`` for reading streams, whose bytes any producer writes."""
    return redis.Redis.from_url(
        url,
        decode_responses=decode_responses,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=15,
        retry_on_timeout=False,
    )


def safe_redis_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def translated_errors(url: str) -> Iterator[None]:
    """Re-raise connection-level Redis errors as :class:`BackendUnavailable`."""
    from galaxy_tasks.domain.errors import RedisUnavailable

    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise RedisUnavailable(f"{safe_redis_url(url)}: {exc}") from exc
    except redis.exceptions.ResponseError as exc:
        if str(exc).startswith(("LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN")):
            raise RedisUnavailable(f"{safe_redis_url(url)}: {exc}") from exc
        raise
