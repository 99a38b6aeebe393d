"""Reading a Redis stream for a bridge: as bytes, decoded per field (SPEC §5 "Bad input").

The client must not decode replies itself (``decode_responses=False``): one
entry with a byte that is not UTF-8 would then fail every read of the stream,
``XINFO STREAM`` included (it returns the first and last entries).  Fields are
decoded by :func:`galaxy_tasks.domain.stream_fields.decode_entry_fields`
against the stream's known fields.
"""

from __future__ import annotations

from typing import Any

import redis

from galaxy_tasks.adapters.redis.client import translated_errors
from galaxy_tasks.domain.handoffs import StreamEntry
from galaxy_tasks.domain.stream_fields import decode_entry_fields
from galaxy_tasks.domain.stream_ids import BEGINNING
from galaxy_tasks.ports.streams import StreamInfo

_PAGE = 10_000


class RedisStreamReader:
    """``StreamReader`` over XREAD / XRANGE / XINFO, on a client that returns bytes."""

    def __init__(self, raw_client: redis.Redis, stream: str, url: str, *, known_fields: frozenset[str]) -> None:
        self._r = raw_client
        self._stream = stream
        self._url = url
        self.known_fields = known_fields

    def read_after(self, offset: str, count: int, block_ms: int) -> list[StreamEntry]:
        with translated_errors(self._url):
            reply: Any = self._r.xread({self._stream: offset}, count=count, block=block_ms)
        if not reply:
            return []
        messages = reply[0][1] if isinstance(reply, list) else reply.get(self._stream.encode(), [[]])[0]
        return _entries(self, messages)

    def info(self) -> StreamInfo | None:
        with translated_errors(self._url):
            try:
                raw: Any = self._r.xinfo_stream(self._stream)
            except redis.exceptions.ResponseError as exc:
                if "no such key" in str(exc).lower():
                    return None
                raise
        first = raw.get("first-entry")
        return StreamInfo(
            length=int(raw["length"]),
            last_entry_id=_text(raw.get("last-generated-id") or BEGINNING),
            entries_added=int(raw.get("entries-added", raw["length"])),
            max_deleted_entry_id=_text(raw.get("max-deleted-entry-id") or BEGINNING),
            first_entry_id=_text(first[0]) if first else None,
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
                start = f"({_text(page[-1][0])}"
        return counted

    def read_before(self, offset: str, limit: int) -> list[StreamEntry]:
        found: list[StreamEntry] = []
        end = offset
        with translated_errors(self._url):
            while len(found) < limit:
                page: Any = self._r.xrevrange(self._stream, max=end, min="-", count=min(_PAGE, limit - len(found)))
                if not page:
                    break
                found.extend(_entries(self, page))
                end = f"({_text(page[-1][0])}"
        return found


def _entries(reader: RedisStreamReader, page: Any) -> list[StreamEntry]:
    return [StreamEntry(_text(i), decode_entry_fields(f or {}, reader.known_fields)) for i, f in page]


def _text(value: str | bytes) -> str:
    """A stream id or an XINFO value: ASCII whatever the client returns."""
    return value.decode("ascii") if isinstance(value, bytes) else str(value)
