"""What the order of jobs asks Redis: the time (the streams' clock) and entries not handed on yet.

Both job streams take their entry ids from one Redis clock, so a shell call's
order key is Redis's ``TIME``.  An entry after its bridge's stored offset has
not been handed on (or is being handed on right now: it is then already in
the job queue, which the caller checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import redis

from galaxy_tasks.adapters.redis.client import translated_errors
from galaxy_tasks.domain.rtmanager.job_order import JobOrder, stream_job_id
from galaxy_tasks.domain.stream_ids import BEGINNING, StreamId


class RedisJobStreams:
    """``JobStreams`` over a bytes client; ``offsets`` maps each job stream to its stored offset's key."""

    def __init__(self, raw_client: redis.Redis, url: str, offsets: Mapping[str, str]) -> None:
        self._r = raw_client
        self._url = url
        self._offsets = dict(offsets)

    def now_key(self) -> StreamId:
        """Redis time in ms, the microseconds within it as the sequence (two calls rarely share a key)."""
        with translated_errors(self._url):
            seconds, micros = cast(Any, self._r.time())
        return StreamId(int(seconds) * 1000 + int(micros) // 1000, int(micros) % 1000)

    def older_entries(self, game_id: str, key: StreamId, limit: int) -> list[JobOrder] | None:
        streams = list(self._offsets)
        with translated_errors(self._url):
            raw_offsets = cast(list[bytes | None], self._r.mget([self._offsets[s] for s in streams]))
            found: list[JobOrder] = []
            for stream, raw in zip(streams, raw_offsets, strict=True):
                offset = BEGINNING if raw is None else raw.decode()
                if StreamId.parse(offset) > key:
                    continue
                page = cast(
                    list[tuple[bytes, dict[bytes, bytes]]],
                    self._r.xrange(stream, min=f"({offset}", max=str(key), count=limit + 1),
                )
                if len(page) > limit:
                    return None
                for entry_id, fields in page:
                    if _names_game(fields.get(b"game_id"), game_id):
                        entry = entry_id.decode()
                        found.append(JobOrder(StreamId.parse(entry), stream_job_id(stream, entry)))
        return found


def _names_game(raw: bytes | None, game_id: str) -> bool:
    """The entry's ``game_id`` is this game's as the job decoder reads it (UTF-8, surrounding blanks ignored)."""
    if raw is None:
        return False
    try:
        return raw.decode().strip() == game_id
    except UnicodeDecodeError:
        return False
