"""Repairing a game whose handed-on entry never arrived, from the stream itself.

A broker can lose a message: Celery's Redis transport moves a message off its
queue and only then records it as unacknowledged, so a Redis restart between
the two loses it; a retry whose re-publish fails is dropped.  The stream is
the source of truth, so a game that stays behind for longer than
``GALAXY_ORDER_REPAIR_AFTER_SECONDS`` — parked entries that nothing releases,
or a cursor short of the last entry the bridge handed on — gets its entries
re-read from ``runtime:health_events`` and applied in order, chained from its
cursor.  Entries the broker delivers later are duplicates and change nothing.
Each game is judged by its own age, whatever the queue holds, so a steady load
on other games never starves a repair.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from galaxy_tasks import metrics
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports import Handoff, HealthConsumerUnitOfWork, StreamEntry
from galaxy_tasks.service.health_consumer import apply_isolating_refusals, record_outcomes

log = get_logger(__name__)


@dataclass(frozen=True)
class StalledGame:
    game_id: str
    cursor: str | None
    target: str
    reason: str


class OrderRepairStore(Protocol):
    def stalled_games(self, cutoff_ms: int, limit: int) -> list[StalledGame]: ...

    def parked_of(self, game_id: str) -> list[Handoff]: ...

    def entries_of_game(self, game_id: str, after: str | None, through: str) -> list[StreamEntry]: ...


def rechain(
    game_id: str, cursor: str | None, entries: Sequence[StreamEntry], parked: Sequence[Handoff]
) -> list[Handoff]:
    """The game's entries after ``cursor`` in stream order, each naming the one before it."""
    by_id = {h.entry_id: h.fields for h in parked}
    by_id.update({e.entry_id: e.fields for e in entries})
    handoffs: list[Handoff] = []
    prev = cursor
    for entry_id in sorted(by_id, key=StreamId.parse):
        if cursor is not None and StreamId.parse(entry_id) <= StreamId.parse(cursor):
            continue
        handoffs.append(Handoff(entry_id, dict(by_id[entry_id]), prev))
        prev = entry_id
    return handoffs


def repair_stalled_games(
    store: OrderRepairStore,
    new_uow: Callable[[], HealthConsumerUnitOfWork],
    *,
    now_ms: int,
    repair_after_ms: int,
    max_games: int,
) -> list[dict[str, object]]:
    """Repair up to ``max_games`` stalled games; report what was done for each."""
    report: list[dict[str, object]] = []
    for game in store.stalled_games(now_ms - repair_after_ms, max_games):
        entries = store.entries_of_game(game.game_id, game.cursor, game.target)
        handoffs = rechain(game.game_id, game.cursor, entries, store.parked_of(game.game_id))
        batch = apply_isolating_refusals(new_uow(), handoffs, now_ms=now_ms)
        record_outcomes(batch)  # what the repair applied or skipped is done with: counted like any entry
        applied = sum(1 for r in (*batch.results, *batch.released) if r.outcome.consumes)
        metrics.ORDER_REPAIRS.inc()
        log.warning(
            "health_event_order_repaired",
            game_id=game.game_id,
            reason=game.reason,
            cursor=game.cursor,
            target=game.target,
            from_stream=len(entries),
            applied=applied,
        )
        report.append({"game_id": game.game_id, "reason": game.reason, "applied": applied})
    return report
