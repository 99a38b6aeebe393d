"""Game Master tasks: per-entry CAS, backlog chunks, the Lobby outbox relay, the health bridge."""

from __future__ import annotations

from typing import Any

from celery import Task

from galaxy_tasks import metrics
from galaxy_tasks.adapters.celery_dispatch import queue_depth
from galaxy_tasks.adapters.order_repair import PostgresRedisOrderRepairStore
from galaxy_tasks.bootstrap import resources
from galaxy_tasks.celery_app import app
from galaxy_tasks.domain.errors import RowLocked, TransientError
from galaxy_tasks.domain.gamemaster.entries import game_id_of
from galaxy_tasks.domain.health_events import HEALTH_EVENT_FIELDS
from galaxy_tasks.logs import get_logger
from galaxy_tasks.long_running import HEALTH_EVENTS_BRIDGE_KEYS, HEALTH_EVENTS_STREAM
from galaxy_tasks.ports import Handoff
from galaxy_tasks.queues import Queue
from galaxy_tasks.service.bridge import StreamBridge
from galaxy_tasks.service.health_consumer import consume
from galaxy_tasks.service.lobby_relay import relay_lobby_outbox
from galaxy_tasks.service.order_repair import repair_stalled_games
from galaxy_tasks.task_names import TaskName
from galaxy_tasks.tasks._base import galaxy_task, now_ms, retry_later
from galaxy_tasks.tasks._long_running import LONG_RUNNING_OPTIONS, build_stream_bridge, stop_condition

log = get_logger(__name__)


@galaxy_task(TaskName.GM_APPLY_HEALTH_EVENT, acks_late=True)
def apply_health_event(
    self: Task, entry_id: str, fields: dict[str, str], prev_entry_id: str | None = None
) -> dict[str, Any]:
    """Apply one ``runtime:health_events`` entry to its game's runtime record (SPEC §5 GM).

    ``prev_entry_id`` is the previous entry of the same game: until that one is
    applied this entry is parked, and then applied in the same transaction as
    it.  Safe to run twice: a second run finds the game's cursor past the entry.
    """
    handoff = Handoff(entry_id, dict(fields), prev_entry_id)
    return resources().health_event_group_commit.submit(handoff).as_dict()


@galaxy_task(TaskName.GM_APPLY_HEALTH_EVENTS_CHUNK, acks_late=True)
def apply_health_events_chunk(self: Task, entries: list[list[Any]]) -> dict[str, Any]:
    """Apply an ordered chunk of health entries in turn, in one transaction (backlog mode).

    Each item is ``[entry_id, fields, prev_entry_id]``, exactly the arguments
    of ``gamemaster.apply_health_event``; the result counts outcomes.
    """
    res = resources()
    handoffs = [Handoff(str(e[0]), dict(e[1]), e[2]) for e in entries]
    batch = consume(res.health_consumer_uow(), res.lobby_outbox, handoffs, now_ms=now_ms())
    if batch.held:  # games whose rows another session holds: only their entries are tried again
        retry_later(self, [[h.as_args() for h in batch.held]], RowLocked(f"{len(batch.held)} entries held back"))
    counts: dict[str, int] = {}
    for result in batch.results:
        outcome = str(result.as_dict()["outcome"])
        counts[outcome] = counts.get(outcome, 0) + 1
    return {"entries": len(entries), "outcomes": counts, "released_from_parking": len(batch.released)}


@galaxy_task(TaskName.GM_RELAY_LOBBY_EVENTS, acks_late=True)
def relay_lobby_events(self: Task) -> dict[str, Any]:
    """Append committed snapshots still in the Lobby outbox to ``gm:lobby_events`` (idempotent)."""
    res = resources()
    appended = relay_lobby_outbox(
        res.lobby_outbox,
        batch_games=res.settings.outbox_relay_batch_size,
        time_budget_seconds=max(res.settings.outbox_relay_interval_seconds, 1.0),
    )
    return {"appended": appended}


@galaxy_task(TaskName.GM_REPAIR_HEALTH_EVENT_ORDER, acks_late=True)
def repair_health_event_order(self: Task) -> dict[str, Any]:
    """Re-apply, from the stream, the games whose handed-on entries never arrived (idempotent).

    Runs whatever the health-event queue holds: a game counts as stalled by its
    own age (nothing applied for ``GALAXY_ORDER_REPAIR_AFTER_SECONDS`` while
    entries of it were handed on before that), so steady load elsewhere cannot
    starve its repair; at most ``GALAXY_ORDER_REPAIR_MAX_GAMES`` per run.  A
    queued copy of a repaired entry is a duplicate later and changes nothing.
    """
    res = resources()
    s = res.settings
    store = PostgresRedisOrderRepairStore(
        res.engine,
        res.redis,
        res.raw_redis,
        stream=HEALTH_EVENTS_STREAM,
        handed_on_key=HEALTH_EVENTS_BRIDGE_KEYS.last_by_partition,
        redis_url=s.redis_url,
        floor_key=HEALTH_EVENTS_BRIDGE_KEYS.repair_floor,
        floor_ttl_ms=int(3 * s.order_repair_interval_seconds * 1000),
        floor_count_limit=s.health_stream_maxlen,
    )
    repaired = repair_stalled_games(
        store,
        res.health_consumer_uow,
        now_ms=now_ms(),
        repair_after_ms=int(s.order_repair_after_seconds * 1000),
        max_games=s.order_repair_max_games,
    )
    _kick_relay([str(r["game_id"]) for r in repaired])
    return {"repaired": repaired, "queued": queue_depth(app, Queue.GM_HEALTH_EVENTS.value)}


@galaxy_task(TaskName.GM_HEALTH_EVENTS_BRIDGE, **LONG_RUNNING_OPTIONS)
def health_events_bridge(self: Task, max_seconds: float | None = None) -> dict[str, Any]:
    """Run the ``runtime:health_events`` bridge until shutdown or lease loss (long-running).

    Belongs on the long-running queue (a ``-P threads`` worker).  Acked on
    receipt: the lease, not redelivery, keeps it alive.  ``max_seconds`` bounds
    a run (tests, ad-hoc catch-ups); the supervisor starts the next one.
    """
    return build_health_events_bridge().run(stop_condition(max_seconds)).as_dict()


def build_health_events_bridge() -> StreamBridge:
    s = resources().settings
    return build_stream_bridge(
        stream=HEALTH_EVENTS_STREAM,
        keys=HEALTH_EVENTS_BRIDGE_KEYS,
        partition_of=game_id_of,
        entry_task=TaskName.GM_APPLY_HEALTH_EVENT,
        chunk_task=TaskName.GM_APPLY_HEALTH_EVENTS_CHUNK,
        known_fields=HEALTH_EVENT_FIELDS,
        # Forgotten only once the order repair has judged the game (and raised a gap alarm if it must).
        forget_after_ms=int(3 * (s.order_repair_after_seconds + s.order_repair_interval_seconds) * 1000),
    )


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


__all__ = [
    "apply_health_event",
    "apply_health_events_chunk",
    "health_events_bridge",
    "relay_lobby_events",
    "repair_health_event_order",
]
