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

from galaxy_tasks import metrics
from galaxy_tasks.domain.gamemaster.entries import FIELD_GAME_ID
from galaxy_tasks.domain.handoffs import Handoff, StreamEntry
from galaxy_tasks.domain.stream_fields import CANNOT_APPLY
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.gamemaster import HealthConsumerUnitOfWork, OrderRepairStore, StalledGame
from galaxy_tasks.service.health_consumer import apply_isolating_refusals, record_outcomes

log = get_logger(__name__)


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


def _about(game: StalledGame) -> dict[str, object]:
    return {"game_id": game.game_id, "cursor": game.cursor, "target": game.target}


def _over_the_gap(game: StalledGame, handoffs: list[Handoff]) -> list[Handoff]:
    """A game whose missing entries are gone from the stream: loud, and then on with what is left.

    What is left is applied in order over the gap; when even the last entry
    handed on is gone, the cursor moves past it (skipped as malformed, with
    why), so the game is not behind for ever.  Its record may now miss what
    the gone entries said: only an alarm can tell.
    """
    metrics.HEALTH_EVENT_GAPS.inc()
    detail = "entries handed on for this game were trimmed from the stream before they were applied"
    log.error("health_event_gap", **_about(game), left_to_apply=len(handoffs), detail=detail)
    if any(h.entry_id == game.target for h in handoffs):
        return handoffs
    prev = handoffs[-1].entry_id if handoffs else game.cursor
    gone = {FIELD_GAME_ID: game.game_id, CANNOT_APPLY: "trimmed from the stream before it was applied"}
    return [*handoffs, Handoff(game.target, gone, prev)]


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
    store.protect_unapplied()
    for game in store.stalled_games(now_ms - repair_after_ms, max_games):
        entries = store.entries_of_game(game.game_id, game.cursor, game.target)
        handoffs = rechain(game.game_id, game.cursor, entries, store.parked_of(game.game_id))
        if game.gap:
            handoffs = _over_the_gap(game, handoffs)
        batch = apply_isolating_refusals(new_uow(), handoffs, now_ms=now_ms)
        record_outcomes(batch)  # what the repair applied or skipped is done with: counted like any entry
        applied = sum(1 for r in (*batch.results, *batch.released) if r.outcome.consumes)
        metrics.ORDER_REPAIRS.inc()
        log.warning(
            "health_event_order_repaired", **_about(game), reason=game.reason, from_stream=len(entries), applied=applied
        )
        report.append({"game_id": game.game_id, "reason": game.reason, "applied": applied})
    return report
