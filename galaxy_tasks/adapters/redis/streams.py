"""Reading a Redis stream for a bridge."""

from __future__ import annotations

from typing import Any

import redis

from galaxy_tasks.adapters.redis.client import translated_errors
from galaxy_tasks.domain.stream_ids import BEGINNING
from galaxy_tasks.ports import StreamEntry, StreamInfo

_PAGE = 10_000


class RedisStreamReader:
    """``StreamReader`` over XREAD / XRANGE / XINFO."""

    def __init__(self, client: redis.Redis, stream: str, url: str) -> None:
        self._r = client
        self._stream = stream
        self._url = url

    def read_after(self, offset: str, count: int, block_ms: int) -> list[StreamEntry]:
        with translated_errors(self._url):
            reply: Any = self._r.xread({self._stream: offset}, count=count, block=block_ms)
        if not reply:
            return []
        messages = reply[0][1] if isinstance(reply, list) else reply.get(self._stream, [[]])[0]
        return [StreamEntry(entry_id, dict(fields or {})) for entry_id, fields in messages]

    def info(self) -> StreamInfo | None:
        with translated_errors(self._url):
            try:
                raw: Any = self._r.xinfo_stream(self._stream)
            except redis.exceptions.ResponseError as exc:
                if "no such key" in str(exc).lower():
                    return None
                raise
        return StreamInfo(
            length=int(raw["length"]),
            last_entry_id=str(raw.get("last-generated-id") or BEGINNING),
            entries_added=int(raw.get("entries-added", raw["length"])),
            max_deleted_entry_id=str(raw.get("max-deleted-entry-id") or BEGINNING),
        )

    def count_after(self, offset: str, limit: int) -> int:
        counted = 0
        start = f"({offset}" if offset != BEGINNING else "-"
        with translated_errors(self._url):
            while counted < limit:
                page: Any = self._r.xrange(self._stream, min=start, max="+", count=min(_PAGE, limit - counted))
                if not page:
                    break
                counted += len(page)
                start = f"({page[-1][0]}"
        return counted
