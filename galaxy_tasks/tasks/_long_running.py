"""What the long-running tasks share: when to stop, and how a stream bridge is put together."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from galaxy_tasks.adapters.celery_dispatch import CeleryEntryDispatcher
from galaxy_tasks.adapters.redis.bridge_state import BridgeKeys, RedisBridgeStateStore
from galaxy_tasks.adapters.redis.lease import RedisLease
from galaxy_tasks.adapters.redis.streams import RedisStreamReader
from galaxy_tasks.bootstrap import resources
from galaxy_tasks.celery_app import app, shutdown_requested
from galaxy_tasks.domain.handoffs import PartitionOf
from galaxy_tasks.domain.rtmanager.jobs import START_JOB_FIELDS, STOP_JOB_FIELDS, JobKind
from galaxy_tasks.long_running import START_JOBS_BRIDGE_KEYS, START_JOBS_STREAM, STOP_JOBS_BRIDGE_KEYS
from galaxy_tasks.ports import EntryDispatcher
from galaxy_tasks.service.bridge import BridgeTuning, StreamBridge
from galaxy_tasks.task_names import TaskName

LONG_RUNNING_OPTIONS: dict[str, Any] = {
    "acks_late": False,
    "reject_on_worker_lost": False,
    "autoretry_for": (),
    "time_limit": None,
    "soft_time_limit": None,
}
"""Acked on receipt, never retried, no time limit: the lease, not redelivery, keeps a singleton alive."""

NEVER = 2**62
"""A backlog threshold no stream reaches: the bridge always hands entries on one by one."""


def stop_condition(max_seconds: float | None) -> Callable[[], bool]:
    """Stop on worker shutdown, or after ``max_seconds`` (tests, ad-hoc catch-ups)."""
    deadline = None if max_seconds is None else time.monotonic() + max_seconds

    def should_stop() -> bool:
        return shutdown_requested.is_set() or (deadline is not None and time.monotonic() > deadline)

    return should_stop


def build_stream_bridge(
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
    res = resources()
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
        ),
    )


def build_job_bridge(stream: str) -> StreamBridge:
    """Jobs are ordered by their games' queues, not by the bridge: no partitions, no chunks."""
    start = stream == START_JOBS_STREAM
    kind = JobKind.START if start else JobKind.STOP
    return build_stream_bridge(
        stream=stream,
        keys=START_JOBS_BRIDGE_KEYS if start else STOP_JOBS_BRIDGE_KEYS,
        partition_of=lambda fields: None,
        entry_task=TaskName.RTM_START_JOB_ENTRY if start else TaskName.RTM_STOP_JOB_ENTRY,
        known_fields=START_JOB_FIELDS if start else STOP_JOB_FIELDS,
        dispatcher=resources().job_dispatch.bridge_dispatcher(kind, stream),
    )
