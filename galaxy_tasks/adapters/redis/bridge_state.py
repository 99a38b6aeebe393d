"""A bridge's stored position in Redis, saved only while its lease is held.

The offset key is fixed by SPEC §3; beside it the bridge keeps the last entry
handed on per partition (so restarted bridges compute the same predecessors)
and a progress hash (lag, holder, time) that ``galaxy-tasks status`` reads.
Everything is written by one Lua script that first checks the lease token: a
bridge that lost its lease can no longer move the offset (fencing).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import redis

from galaxy_tasks.adapters.redis.client import translated_errors
from galaxy_tasks.contract import BridgeKeys
from galaxy_tasks.domain.stream_ids import BEGINNING
from galaxy_tasks.ports.streams import BridgeState

_SAVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[4], 'lag', ARGV[3], 'updated_at_ms', ARGV[4], 'holder', ARGV[1], 'offset', ARGV[2],
           'entries_through_offset', ARGV[5])
local i = 6
while i <= #ARGV do
  local last = math.min(i + 1999, #ARGV)
  redis.call('HSET', KEYS[3], unpack(ARGV, i, last))
  i = last + 1
end
return 1
"""


# KEYS: lease, last_by_partition.  ARGV: holder, then partition, expected last entry, ...
_FORGET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', KEYS[2], ARGV[i]) end
end
return 1
"""


# KEYS: lease, offset, last_by_partition, progress, replay request, repair scan.  ARGV: holder.
# Entries handed on again lie behind what the consumer's repair has looked at: counting the replay
# makes its next run look at everything.
_REPLAY = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local offset = redis.call('GET', KEYS[5])
if not offset then
  return false
end
redis.call('SET', KEYS[2], offset)
redis.call('DEL', KEYS[5])
redis.call('HINCRBY', KEYS[6], 'replays', 1)
redis.call('HDEL', KEYS[4], 'entries_through_offset')
redis.call('HSET', KEYS[4], 'offset', offset)
return offset
"""


class RedisBridgeStateStore:
    """``BridgeStateStore`` fenced by the bridge's lease token."""

    def __init__(self, client: redis.Redis, keys: BridgeKeys, holder: str, url: str) -> None:
        self._r = client
        self._keys = keys
        self._holder = holder
        self._url = url
        self._save = client.register_script(_SAVE)
        self._replay = client.register_script(_REPLAY)
        self._forget = client.register_script(_FORGET)

    def load(self) -> BridgeState:
        with translated_errors(self._url):
            offset: Any = self._r.get(self._keys.offset)
            last: Any = self._r.hgetall(self._keys.last_by_partition)
            progress: Any = self._r.hmget(self._keys.progress, ["offset", "entries_through_offset"])
        offset = offset or BEGINNING
        saved_offset, through = progress
        # Trust the saved count only for the offset it was saved with (an operator may have moved the offset).
        entries = int(through) if through is not None and saved_offset == offset else None
        return BridgeState(offset=offset, last_by_partition=dict(last or {}), entries_through_offset=entries)

    def save(self, offset: str, last_by_partition: Mapping[str, str], *, lag: int, entries_through_offset: int) -> bool:
        pairs: list[str] = []
        for partition, entry_id in last_by_partition.items():
            pairs.extend((partition, entry_id))
        k = self._keys
        with translated_errors(self._url):
            saved = self._save(
                keys=[k.lease, k.offset, k.last_by_partition, k.progress],
                args=[self._holder, offset, lag, int(time.time() * 1000), entries_through_offset, *pairs],
            )
        return bool(saved)

    def forget(self, last_by_partition: Mapping[str, str]) -> bool:
        pairs: list[str] = []
        for partition, entry_id in last_by_partition.items():
            pairs.extend((partition, entry_id))
        with translated_errors(self._url):
            done = self._forget(keys=[self._keys.lease, self._keys.last_by_partition], args=[self._holder, *pairs])
        return bool(done)

    def apply_replay_request(self) -> str | None:
        k = self._keys
        with translated_errors(self._url):
            moved: Any = self._replay(
                keys=[k.lease, k.offset, k.last_by_partition, k.progress, k.replay_request, k.repair_scan],
                args=[self._holder],
            )
        return None if moved is None else str(moved)
