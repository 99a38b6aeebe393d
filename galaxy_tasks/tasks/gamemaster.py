"""Game Master tasks: per-entry CAS, backlog chunks, the Lobby outbox relay, the health bridge."""

from __future__ import annotations

import time
from typing import Any

from celery import Task
from celery.exceptions import Retry

from galaxy_tasks import metrics
from galaxy_tasks.adapters.celery_dispatch import CeleryEntryDispatcher
from galaxy_tasks.adapters.redis.bridge_state import RedisBridgeStateStore
from galaxy_tasks.adapters.redis.lease import RedisLease
from galaxy_tasks.adapters.redis.streams import RedisStreamReader
from galaxy_tasks.bootstrap import resources
from galaxy_tasks.celery_app import app, shutdown_requested
from galaxy_tasks.domain.errors import TransientError
from galaxy_tasks.domain.gamemaster.consumer import Outcome
from galaxy_tasks.domain.gamemaster.entries import game_id_of
from galaxy_tasks.logs import get_logger
from galaxy_tasks.long_running import HEALTH_EVENTS_BRIDGE_KEYS, HEALTH_EVENTS_STREAM
from galaxy_tasks.ports import Handoff
from galaxy_tasks.service.bridge import BridgeTuning, StreamBridge
from galaxy_tasks.service.health_consumer import BatchResult, EntryResult, apply_entries
from galaxy_tasks.service.lobby_relay import relay_pending
from galaxy_tasks.task_names import TaskName
from galaxy_tasks.tasks._base import galaxy_task, now_ms

log = get_logger(__name__)

_RETRY_COUNTDOWN_SECONDS = 0.2


@galaxy_task(TaskName.GM_APPLY_HEALTH_EVENT, acks_late=True)
def apply_health_event(
    self: Task,
    entry_id: str,
    fields: dict[str, str],
    prev_entry_id: str | None = None,
    first_seen_ms: int | None = None,
) -> dict[str, Any]:
    """Apply one ``runtime:health_events`` entry to its game's runtime record (SPEC §5 GM).

    ``prev_entry_id`` is the previous entry of the same game; the entry waits
    (and retries) until that one is applied.  Safe to run twice: a second run
    finds the game's cursor past the entry and changes nothing.
    """
    handoff = Handoff(entry_id, dict(fields), prev_entry_id)
    results = _consume(self, [handoff], first_seen_ms, retry_args=lambda rest: rest[0].as_args())
    return results[0].as_dict()


@galaxy_task(TaskName.GM_APPLY_HEALTH_EVENTS_CHUNK, acks_late=True)
def apply_health_events_chunk(self: Task, entries: list[list[Any]], first_seen_ms: int | None = None) -> dict[str, Any]:
    """Apply an ordered chunk of health entries in turn, in one transaction (backlog mode).

    Each item is ``[entry_id, fields, prev_entry_id]``, exactly the arguments
    of ``gamemaster.apply_health_event``; the result counts outcomes.
    """
    handoffs = [Handoff(str(e[0]), dict(e[1]), e[2]) for e in entries]
    results = _consume(self, handoffs, first_seen_ms, retry_args=lambda rest: [[h.as_args() for h in rest]])
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
    return {"entries": len(handoffs), "outcomes": counts}


@galaxy_task(TaskName.GM_RELAY_LOBBY_EVENTS, acks_late=True)
def relay_lobby_events(self: Task) -> dict[str, Any]:
    """Append committed snapshots still in the Lobby outbox to ``gm:lobby_events`` (idempotent)."""
    res = resources()
    appended = relay_pending(
        res.lobby_outbox,
        batch_games=res.settings.outbox_relay_batch_size,
        time_budget_seconds=max(res.settings.outbox_relay_interval_seconds, 1.0),
    )
    return {"appended": appended}


@galaxy_task(
    TaskName.GM_HEALTH_EVENTS_BRIDGE,
    acks_late=False,
    reject_on_worker_lost=False,
    autoretry_for=(),
    time_limit=None,
    soft_time_limit=None,
)
def health_events_bridge(self: Task, max_seconds: float | None = None) -> dict[str, Any]:
    """Run the ``runtime:health_events`` bridge until shutdown or lease loss (long-running).

    Belongs on the long-running queue (a ``-P threads`` worker).  Acked on
    receipt: the lease, not redelivery, keeps it alive.  ``max_seconds`` bounds
    a run (tests, ad-hoc catch-ups); the supervisor starts the next one.
    """
    deadline = None if max_seconds is None else time.monotonic() + max_seconds

    def should_stop() -> bool:
        return shutdown_requested.is_set() or (deadline is not None and time.monotonic() > deadline)

    return build_health_events_bridge().run(should_stop).as_dict()


def build_health_events_bridge() -> StreamBridge:
    res = resources()
    s = res.settings
    keys = HEALTH_EVENTS_BRIDGE_KEYS
    lease = RedisLease(res.redis, keys.lease, s.lease_ttl_seconds, s.redis_url)
    return StreamBridge(
        stream=HEALTH_EVENTS_STREAM,
        partition_of=game_id_of,
        reader=RedisStreamReader(res.redis, HEALTH_EVENTS_STREAM, s.redis_url),
        state=RedisBridgeStateStore(res.redis, keys, lease.holder, s.redis_url),
        lease=lease,
        dispatcher=CeleryEntryDispatcher(
            app,
            entry_task=TaskName.GM_APPLY_HEALTH_EVENT.value,
            chunk_task=TaskName.GM_APPLY_HEALTH_EVENTS_CHUNK.value,
        ),
        tuning=BridgeTuning(
            batch_size=s.bridge_batch_size,
            block_ms=s.bridge_block_ms,
            backlog_threshold=s.backlog_threshold,
            backlog_batch_size=s.backlog_batch_size,
            backlog_partitions=s.backlog_partitions,
        ),
    )


def _consume(
    task: Task,
    handoffs: list[Handoff],
    first_seen_ms: int | None,
    *,
    retry_args: Any,
) -> list[EntryResult]:
    """Apply, waiting briefly for predecessors, then retrying what still waits.

    Polls for ``GALAXY_ORDER_POLL_SECONDS`` (a predecessor usually commits
    within milliseconds on another process), then re-queues the waiting
    entries.  Past ``GALAXY_ORDER_WAIT_LIMIT_SECONDS`` the predecessor is
    presumed lost and the entry is applied anyway, loudly.
    """
    res = resources()
    settings = res.settings
    first_seen_ms = first_seen_ms or now_ms()
    poll_until = time.monotonic() + settings.order_poll_seconds
    final: dict[str, EntryResult] = {}
    pending = handoffs
    ignore: set[str] = set()
    delay = 0.002
    while True:
        batch = apply_entries(res.health_consumer_uow(), pending, now_ms=now_ms(), ignore_order_for=ignore)
        _record(batch, ignore)
        _kick_relay(batch.published_games)
        waiting = set(batch.waiting)
        final.update((r.entry_id, r) for r in batch.results if r.entry_id not in waiting)
        if not waiting:
            return [final[h.entry_id] for h in handoffs]
        pending = [h for h in pending if h.entry_id in waiting]
        if now_ms() - first_seen_ms > settings.order_wait_limit_seconds * 1000:
            ignore = {pending[0].entry_id}
            log.error(
                "health_event_predecessor_lost",
                game_id=game_id_of(pending[0].fields),
                stream_entry_id=pending[0].entry_id,
                prev_entry_id=pending[0].prev_entry_id,
                waited_ms=now_ms() - first_seen_ms,
            )
            continue
        if time.monotonic() > poll_until:
            metrics.HEALTH_EVENTS_WAITED.inc(len(pending))
            raise task.retry(
                args=retry_args(pending),
                kwargs={"first_seen_ms": first_seen_ms},
                countdown=_RETRY_COUNTDOWN_SECONDS,
                exc=None,
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _record(batch: BatchResult, forced: set[str]) -> None:
    for result in batch.results:
        if result.outcome is Outcome.WAITING:
            continue
        if result.outcome is Outcome.DUPLICATE:
            metrics.HEALTH_EVENTS_DUPLICATE.inc()
            continue
        metrics.HEALTH_EVENTS_CONSUMED.inc()
        if result.entry_id in forced:
            metrics.HEALTH_EVENTS_ORDER_FORCED.inc()
        if result.outcome.is_skip:
            metrics.HEALTH_EVENTS_SKIPPED.labels(result.outcome.value).inc()
        if result.transition is not None:
            metrics.STATUS_TRANSITIONS.labels(result.transition.source.value, result.transition.target.value).inc()


def _kick_relay(game_ids: list[str]) -> None:
    """Publish right after commit for low latency; the periodic relay covers any failure here."""
    if not game_ids:
        return
    try:
        appended = resources().lobby_outbox.relay_games(game_ids, wait_for_locks=True)
    except TransientError as exc:
        log.warning("lobby_relay_deferred", games=len(game_ids), error=str(exc))
        return
    metrics.LOBBY_EVENTS_PUBLISHED.inc(appended)


__all__ = ["Retry", "apply_health_event", "apply_health_events_chunk", "health_events_bridge", "relay_lobby_events"]
