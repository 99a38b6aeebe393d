"""The Game Master use case: apply ``runtime:health_events`` entries to runtime records.

One call handles one entry (the per-event task) or an ordered chunk of them
(backlog mode) in a single transaction: cursors and records are locked in
game-id order, every entry is folded in with the pure
:func:`~galaxy_tasks.domain.gamemaster.consumer.fold_entry`, and the record
changes, cursors and Lobby snapshots are written together.  A snapshot is
therefore in the outbox exactly when its change is committed, and a second
delivery of an entry finds the cursor past it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from galaxy_tasks.domain.gamemaster.consumer import Outcome, fold_entry
from galaxy_tasks.domain.gamemaster.entries import FIELD_EVENT_TYPE, game_id_of
from galaxy_tasks.domain.gamemaster.records import GameRecord, LobbySnapshot
from galaxy_tasks.domain.gamemaster.statuses import Transition
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports import Handoff, HealthConsumerUnitOfWork

log = get_logger(__name__)


@dataclass(frozen=True)
class EntryResult:
    entry_id: str
    game_id: str | None
    outcome: Outcome
    transition: Transition | None = None
    published: bool = False
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "entry_id": self.entry_id,
            "game_id": self.game_id,
            "outcome": self.outcome.value,
            "transition": None if self.transition is None else f"{self.transition.source}->{self.transition.target}",
            "published": self.published,
            "detail": self.detail,
        }


@dataclass
class BatchResult:
    results: list[EntryResult] = field(default_factory=list)

    @property
    def waiting(self) -> list[str]:
        return [r.entry_id for r in self.results if r.outcome is Outcome.WAITING]

    @property
    def published_games(self) -> list[str]:
        return sorted({r.game_id for r in self.results if r.published and r.game_id})


def apply_entries(
    uow: HealthConsumerUnitOfWork,
    handoffs: Sequence[Handoff],
    *,
    now_ms: int,
    ignore_order_for: Collection[str] = (),
) -> BatchResult:
    """Apply ``handoffs`` (in stream order) and report what became of each.

    Entries whose predecessor is not applied yet come back as ``WAITING``
    (and so does every later entry of the same game); the caller retries them.
    ``ignore_order_for`` names entries to apply even so (predecessor lost).
    An entry listed twice is applied (and reported) once.
    """
    unique: dict[str, Handoff] = {}
    for handoff in handoffs:
        unique.setdefault(handoff.entry_id, handoff)
    handoffs = list(unique.values())
    by_game = {h.entry_id: game_id_of(h.fields) for h in handoffs}
    results: dict[str, EntryResult] = {}
    for handoff in handoffs:
        if by_game[handoff.entry_id] is None:
            results[handoff.entry_id] = EntryResult(
                handoff.entry_id, None, Outcome.SKIPPED_MALFORMED, detail="missing game_id"
            )
    game_ids = sorted({g for g in by_game.values() if g is not None})
    if game_ids:
        with uow:
            results.update(
                _fold_locked(
                    uow,
                    handoffs=handoffs,
                    by_game=by_game,
                    game_ids=game_ids,
                    now_ms=now_ms,
                    ignore_order_for=ignore_order_for,
                )
            )
    ordered = [results[h.entry_id] for h in handoffs]
    for handoff, result in zip(handoffs, ordered, strict=True):
        _log_result(result, handoff.fields.get(FIELD_EVENT_TYPE))
    return BatchResult(ordered)


def _fold_locked(
    uow: HealthConsumerUnitOfWork,
    *,
    handoffs: Sequence[Handoff],
    by_game: dict[str, str | None],
    game_ids: list[str],
    now_ms: int,
    ignore_order_for: Collection[str],
) -> dict[str, EntryResult]:
    cursors = uow.lock_cursors(game_ids)
    records: dict[str, GameRecord | None] = dict.fromkeys(game_ids)
    records.update(uow.lock_records(game_ids))
    blocked: set[str] = set()
    changed_records: dict[str, GameRecord] = {}
    moved_cursors: set[str] = set()
    snapshots: list[tuple[str, LobbySnapshot]] = []
    results: dict[str, EntryResult] = {}
    for handoff in handoffs:
        game_id = by_game[handoff.entry_id]
        if game_id is None:
            continue
        if game_id in blocked:
            results[handoff.entry_id] = EntryResult(
                handoff.entry_id, game_id, Outcome.WAITING, detail="an earlier entry of the game waits"
            )
            continue
        step = fold_entry(
            entry_id=handoff.entry_id,
            fields=handoff.fields,
            prev_entry_id=handoff.prev_entry_id,
            cursor=cursors[game_id],
            record=records[game_id],
            now_ms=now_ms,
            ignore_order=handoff.entry_id in ignore_order_for,
        )
        if step.outcome is Outcome.WAITING:
            blocked.add(game_id)
        if step.outcome.consumes:
            cursors[game_id] = step.cursor
            moved_cursors.add(game_id)
        if step.record_changed and step.record is not None:
            records[game_id] = step.record
            changed_records[game_id] = step.record
        if step.snapshot is not None:
            snapshots.append((handoff.entry_id, step.snapshot))
        results[handoff.entry_id] = EntryResult(
            handoff.entry_id,
            game_id,
            step.outcome,
            step.transition,
            published=step.snapshot is not None,
            detail=step.detail,
        )
    if moved_cursors:
        uow.save_records(list(changed_records.values()), now_ms)
        uow.save_cursors([cursors[g] for g in sorted(moved_cursors)])
        uow.enqueue_snapshots(snapshots)
        uow.commit()
    return results


def _log_result(result: EntryResult, event_type: str | None) -> None:
    fields = {"game_id": result.game_id, "stream_entry_id": result.entry_id}
    if result.outcome.is_skip:
        log.warning(
            "health_event_skipped", reason=result.outcome.value, event_type=event_type, detail=result.detail, **fields
        )
    elif result.transition is not None:
        log.info(
            "runtime_status_transitioned",
            from_status=result.transition.source.value,
            to_status=result.transition.target.value,
            published=result.published,
            **fields,
        )
    else:
        log.debug("health_event_handled", outcome=result.outcome.value, published=result.published, **fields)
