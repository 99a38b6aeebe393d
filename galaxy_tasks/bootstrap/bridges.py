"""How the composition root puts a stream bridge together: the stream's reader, the bridge's Redis state
and lease, and where entries go (per-event and chunk tasks through the broker, or the jobs' queues)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from galaxy_tasks.adapters.celery_dispatch import CeleryEntryDispatcher
from galaxy_tasks.adapters.redis.bridge_state import RedisBridgeStateStore
from galaxy_tasks.adapters.redis.lease import RedisLease
from galaxy_tasks.adapters.redis.streams import RedisStreamReader
from galaxy_tasks.celery_app import app
from galaxy_tasks.contract import BridgeKeys
from galaxy_tasks.domain.handoffs import PartitionOf
from galaxy_tasks.ports.streams import EntryDispatcher
from galaxy_tasks.service.bridge import BridgeTuning, StreamBridge
from galaxy_tasks.task_names import TaskName

if TYPE_CHECKING:
    from galaxy_tasks.bootstrap.root import Resources

NEVER = 2**62
"""A backlog threshold no stream reaches: the bridge always hands entries on one by one."""
LEASE_RENEWALS_PER_TTL = 40
"""A bridge renews its lease about this many times per lease TTL (every 0.25 s by default): often enough
that a bridge whose lease was taken stops within a fraction of a second, and no more."""


def build_stream_bridge(
    res: Resources,
    *,
    stream: str,
    keys: BridgeKeys,
    partition_of: PartitionOf,
    entry_task: TaskName,
    known_fields: frozenset[str],
    chunk_task: TaskName | None = None,
    forget_after_ms: int = BridgeTuning.forget_after_ms,
    dispatcher: EntryDispatcher | None = None,
) -> StreamBridge:
    """A bridge from ``stream`` to ``entry_task``; without a ``chunk_task`` it never switches to chunks.

    ``forget_after_ms``: how much older than the stream's newest entry a partition's trimmed last
    entry must be before the bridge forgets the partition.  ``dispatcher``: how entries are handed on
    (default: one ``entry_task`` message each).
    """
    s = res.settings
    lease = RedisLease(res.redis, keys.lease, s.lease_ttl_seconds, s.redis_url)
    return StreamBridge(
        stream=stream,
        partition_of=partition_of,
        reader=RedisStreamReader(res.raw_redis, stream, s.redis_url, known_fields=known_fields),
        state=RedisBridgeStateStore(res.redis, keys, lease.holder, s.redis_url),
        lease=lease,
        dispatcher=dispatcher
        or CeleryEntryDispatcher(
            app, entry_task=entry_task.value, chunk_task=None if chunk_task is None else chunk_task.value
        ),
        tuning=BridgeTuning(
            batch_size=s.bridge_batch_size,
            block_ms=s.bridge_block_ms,
            backlog_threshold=s.backlog_threshold if chunk_task is not None else NEVER,
            backlog_batch_size=s.backlog_batch_size,
            backlog_partitions=s.backlog_partitions,
            forget_after_ms=forget_after_ms,
            dispatch_window=s.dispatch_window if chunk_task is not None else 0,
            renew_every_seconds=s.lease_ttl_seconds / LEASE_RENEWALS_PER_TTL,
        ),
    )
