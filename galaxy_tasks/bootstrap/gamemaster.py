"""The Game Master's entry points: what each ``gamemaster.*`` task calls, with its adapters bound.

``apply_health_event`` hides the one non-obvious step of the hot path: per-event
tasks running at once in a process join one transaction (a group commit),
applied by the same ``consume`` a chunk runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from galaxy_tasks import metrics
from galaxy_tasks.adapters.celery_dispatch import queue_depth
from galaxy_tasks.adapters.order_repair import PostgresRedisOrderRepairStore
from galaxy_tasks.bootstrap.bridges import build_stream_bridge
from galaxy_tasks.celery_app import app
from galaxy_tasks.contract import HEALTH_EVENTS_BRIDGE_KEYS, HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.gamemaster.entries import game_id_of
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.domain.health_events import HEALTH_EVENT_FIELDS
from galaxy_tasks.queues import Queue
from galaxy_tasks.service.bridge import StreamBridge
from galaxy_tasks.service.group_commit import GroupCommit
from galaxy_tasks.service.health_consumer import BatchResult, EntryResult, consume
from galaxy_tasks.service.order_repair import repair_stalled_games
from galaxy_tasks.service.outbox import publish_games
from galaxy_tasks.task_names import TaskName

if TYPE_CHECKING:
    from galaxy_tasks.bootstrap.root import Resources


def _now_ms() -> int:
    return int(time.time() * 1000)


class GameMasterEntryPoints:
    """Built once per process by :class:`~galaxy_tasks.bootstrap.root.Resources` (``resources().gamemaster``)."""

    def __init__(self, res: Resources) -> None:
        self._res = res

    @cached_property
    def _group_commit(self) -> GroupCommit[Handoff, EntryResult]:
        res = self._res

        def apply_batch(handoffs: list[Handoff]) -> list[EntryResult]:
            metrics.HEALTH_EVENT_BATCH_ENTRIES.observe(len(handoffs))
            return self.apply_chunk(handoffs).results_for(handoffs)

        return GroupCommit(apply_batch, max_batch=res.settings.group_commit_max_batch)

    def apply_health_event(self, handoff: Handoff) -> EntryResult:
        """One entry, in one transaction with the other per-event tasks this process runs at the moment."""
        return self._group_commit.submit(handoff)

    def apply_chunk(self, handoffs: Sequence[Handoff]) -> BatchResult:
        """Ordered entries in one transaction (a chunk, or a group commit's batch)."""
        res = self._res
        return consume(res.health_consumer_uow(), res.lobby_outbox, handoffs, now_ms=_now_ms(), clock=res.stream_clock)

    def relay_lobby(self) -> int:
        """One periodic sweep of the Lobby outbox, within one relay interval."""
        return self._res.relay(self._res.lobby_outbox)

    def repair_order(self) -> dict[str, object]:
        """Re-apply from the stream the games whose handed-on entries never arrived; publish them at once."""
        res = self._res
        s = res.settings
        store = PostgresRedisOrderRepairStore(
            res.engine,
            res.redis,
            res.raw_redis,
            stream=HEALTH_EVENTS_STREAM,
            keys=HEALTH_EVENTS_BRIDGE_KEYS,
            redis_url=s.redis_url,
            floor_ttl_ms=int(3 * s.order_repair_interval_seconds * 1000),
            floor_count_limit=s.health_stream_maxlen,
        )
        repaired = repair_stalled_games(
            store,
            res.health_consumer_uow,
            now_ms=_now_ms(),
            repair_after_ms=int(s.order_repair_after_seconds * 1000),
            max_games=s.order_repair_max_games,
        )
        publish_games(res.lobby_outbox, [str(r["game_id"]) for r in repaired])
        return {"repaired": repaired, "queued": queue_depth(app, Queue.GM_HEALTH_EVENTS.value)}

    def health_events_bridge(self) -> StreamBridge:
        """The ``runtime:health_events`` bridge: per-event tasks while the pools keep up, ordered chunks when not."""
        s = self._res.settings
        return build_stream_bridge(
            self._res,
            stream=HEALTH_EVENTS_STREAM,
            keys=HEALTH_EVENTS_BRIDGE_KEYS,
            partition_of=game_id_of,
            entry_task=TaskName.GM_APPLY_HEALTH_EVENT,
            chunk_task=TaskName.GM_APPLY_HEALTH_EVENTS_CHUNK,
            known_fields=HEALTH_EVENT_FIELDS,
            # Forgotten only once the order repair has judged the game (and raised a gap alarm if it must).
            forget_after_ms=int(3 * (s.order_repair_after_seconds + s.order_repair_interval_seconds) * 1000),
        )
