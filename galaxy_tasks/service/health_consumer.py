"""The Game Master use case: apply ``runtime:health_events`` entries to runtime records.

One call handles one entry (the per-event task) or an ordered chunk of them
(backlog mode) in a single transaction: cursors and records are locked in
game-id order, every entry is folded in with the pure
:func:`~galaxy_tasks.domain.gamemaster.consumer.fold_entry`, and the record
changes, cursors and Lobby snapshots are written together.  A snapshot is
therefore in the outbox exactly when its change is committed, and a second
delivery of an entry finds the cursor past it.

An entry whose predecessor is not applied yet is *parked* (stored with its
fields) and its task is done; the transaction that applies the predecessor
finds the parked successors under the same cursor lock and applies them too.
Nothing waits in a worker slot and nothing goes back through the broker, so
order holds however scrambled the deliveries (retries after an outage,
redeliveries after a crash).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from galaxy_tasks import metrics
from galaxy_tasks.domain.errors import RowLocked, TransientError, ValueRefused
from galaxy_tasks.domain.game_ids import game_id_problem
from galaxy_tasks.domain.gamemaster.consumer import Outcome, fold_entry
from galaxy_tasks.domain.gamemaster.entries import FIELD_EVENT_TYPE, FIELD_GAME_ID, game_id_of, no_game_reason
from galaxy_tasks.domain.gamemaster.records import GameRecord, QueuedSnapshot
from galaxy_tasks.domain.gamemaster.statuses import Transition
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.domain.stream_fields import CANNOT_APPLY
from galaxy_tasks.domain.stream_ids import StreamId, is_after
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.gamemaster import ConsumerWrites, HealthConsumerUnitOfWork
from galaxy_tasks.ports.outbox import OutboxEntry, StreamOutbox
from galaxy_tasks.ports.streams import StreamClock
from galaxy_tasks.service.freshness import observe_commits
from galaxy_tasks.service.outbox import after_commit

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
    """One result per entry handed in: in the order handed in, or per game when games were applied apart."""
    released: list[EntryResult] = field(default_factory=list)
    """Parked entries (of earlier deliveries) this call applied or found already applied."""
    lobby_entries: list[OutboxEntry] = field(default_factory=list)
    """The Lobby outbox rows this call committed, in commit order."""
    held: list[Handoff] = field(default_factory=list)
    """Entries not applied because another session held their game's row: to hand in again later."""

    @property
    def parked(self) -> list[str]:
        return [r.entry_id for r in self.results if r.outcome is Outcome.PARKED]

    @property
    def published_games(self) -> list[str]:
        return sorted({r.game_id for r in (*self.results, *self.released) if r.published and r.game_id})

    def extend(self, other: BatchResult) -> None:
        """Append what another transaction of the same call did."""
        self.results.extend(other.results)
        self.released.extend(other.released)
        self.lobby_entries.extend(other.lobby_entries)
        self.held.extend(other.held)

    def results_for(self, handoffs: Sequence[Handoff]) -> list[EntryResult]:
        """One result per handoff, in the order given (an entry handed in twice gets its one result twice).

        Raises :class:`RowLocked` when some were held back (their tasks are to be retried).
        """
        if self.held:
            raise RowLocked(f"the rows of {len({game_id_of(h.fields) for h in self.held})} game(s) are held elsewhere")
        by_entry = {result.entry_id: result for result in self.results}
        return [by_entry[handoff.entry_id] for handoff in handoffs]


def consume(
    uow: HealthConsumerUnitOfWork,
    outbox: StreamOutbox,
    handoffs: Sequence[Handoff],
    *,
    now_ms: int,
    clock: StreamClock | None = None,
) -> BatchResult:
    """Apply, count, and publish right away what the transaction committed.

    A game whose row another session holds past the lock timeout costs only
    its own entries: the others are applied game by game and published, and
    the held game's entries come back in ``held`` for the caller to hand in
    again (:class:`RowLocked` is raised when nothing else was applied).
    With a ``clock`` (Redis's), each committed entry's age at the commit goes
    to the freshness histogram.
    """
    batch = apply_isolating_held_rows(uow, handoffs, now_ms=now_ms)
    record_outcomes(batch)
    after_commit(outbox, batch.lobby_entries)
    if clock is not None:
        _observe_commit_ages(batch, clock)
    return batch


def _observe_commit_ages(batch: BatchResult, clock: StreamClock) -> None:
    committed = [
        result.entry_id
        for result in (*batch.results, *batch.released)
        if result.outcome not in (Outcome.PARKED, Outcome.DUPLICATE)
    ]
    if not committed:
        return
    try:
        committed_at_ms = clock.now_ms()
    except TransientError as exc:  # the commit is done; only its measurement is lost
        log.debug("freshness_not_measured", error=str(exc))
        return
    observe_commits(committed, committed_at_ms)


def apply_isolating_held_rows(
    uow: HealthConsumerUnitOfWork, handoffs: Sequence[Handoff], *, now_ms: int
) -> BatchResult:
    """:func:`apply_isolating_refusals`, where a held row stops only its own game.

    A chunk spans many games in one transaction; one of them held elsewhere
    (a long migration, an operator's open transaction) would otherwise fail
    the chunk at every retry and hold all the others back for as long.  So a
    transaction that timed out on a lock is applied again one game per
    transaction (each game's entries in order); the entries of the games
    still held come back in :attr:`BatchResult.held`.
    """
    try:
        return apply_isolating_refusals(uow, handoffs, now_ms=now_ms)
    except RowLocked as exc:
        games: dict[str | None, list[Handoff]] = {}
        for handoff in handoffs:
            games.setdefault(game_id_of(handoff.fields), []).append(handoff)
        if len(games) == 1:
            raise
        log.warning("health_entries_row_held_applying_game_by_game", games=len(games), error=str(exc))
        merged = BatchResult()
        for part in games.values():
            try:
                merged.extend(apply_isolating_refusals(uow, part, now_ms=now_ms))
            except RowLocked:
                merged.held.extend(part)
        if len(merged.held) == len(handoffs):
            raise
        return merged


def record_outcomes(batch: BatchResult) -> None:
    """Count what became of a batch's entries: one increment per counter and label set, not per entry."""
    parked = duplicate = consumed = 0
    skipped: Counter[str] = Counter()
    transitions: Counter[tuple[str, str]] = Counter()
    for result in (*batch.results, *batch.released):
        if result.outcome is Outcome.PARKED:
            parked += 1
            continue
        if result.outcome is Outcome.DUPLICATE:
            duplicate += 1
            continue
        consumed += 1
        if result.outcome.is_skip:
            skipped[result.outcome.value] += 1
        if result.transition is not None:
            transitions[(result.transition.source.value, result.transition.target.value)] += 1
    for counter, count in ((metrics.HEALTH_EVENTS_PARKED, parked), (metrics.HEALTH_EVENTS_DUPLICATE, duplicate)):
        if count:
            counter.inc(count)
    if consumed:
        metrics.HEALTH_EVENTS_CONSUMED.inc(consumed)
    for reason, count in skipped.items():
        metrics.HEALTH_EVENTS_SKIPPED.labels(reason).inc(count)
    for (source, target), count in transitions.items():
        metrics.STATUS_TRANSITIONS.labels(source, target).inc(count)


def apply_isolating_refusals(uow: HealthConsumerUnitOfWork, handoffs: Sequence[Handoff], *, now_ms: int) -> BatchResult:
    """:func:`apply_entries`, where a value the database refuses costs only the entry that carried it.

    The database refusing a value (:class:`ValueRefused`) fails the whole
    transaction, other games' entries with it, and would again on every retry.
    So a refused transaction is applied again one entry per transaction, in the
    order handed in (parking keeps each game's order); an entry refused on its
    own is applied as malformed — counted, skipped, its game's cursor moves past
    it — and when even that is refused (its game id itself), it is skipped with
    no state written at all.  Transient errors are raised as they are: retried,
    never skipped.
    """
    try:
        return apply_entries(uow, handoffs, now_ms=now_ms)
    except ValueRefused as exc:
        if len(handoffs) == 1:
            return _apply_refused(uow, handoffs[0], exc, now_ms=now_ms)
        log.warning("health_entries_refused_applying_one_by_one", entries=len(handoffs), error=str(exc))
        merged = BatchResult()
        for handoff in handoffs:
            merged.extend(apply_isolating_refusals(uow, [handoff], now_ms=now_ms))
        return merged


def _apply_refused(uow: HealthConsumerUnitOfWork, handoff: Handoff, exc: ValueRefused, *, now_ms: int) -> BatchResult:
    detail = f"refused by the database: SQLSTATE {exc.sqlstate}"
    log.warning("health_entry_refused_by_database", stream_entry_id=handoff.entry_id, error=str(exc))
    game_id = game_id_of(handoff.fields)
    marked = {FIELD_GAME_ID: game_id, CANNOT_APPLY: detail} if game_id is not None else {}
    try:
        return apply_entries(uow, [Handoff(handoff.entry_id, marked, handoff.prev_entry_id)], now_ms=now_ms)
    except ValueRefused:
        result = EntryResult(handoff.entry_id, None, Outcome.SKIPPED_MALFORMED, detail=detail)
        _log_result(result, None)
        return BatchResult([result])


def apply_entries(uow: HealthConsumerUnitOfWork, handoffs: Sequence[Handoff], *, now_ms: int) -> BatchResult:
    """Apply ``handoffs`` and report what became of each (``PARKED``: stored until its predecessor is applied).

    Per game the entries are taken in stream-id order together with the game's
    parked entries; an entry listed twice is applied (and reported) once, and
    where a handed-in entry is also parked, the handed-in copy (its
    predecessor id) wins — that is how the order repair re-chains a game.
    """
    unique: dict[str, Handoff] = {}
    for handoff in handoffs:
        unique.setdefault(handoff.entry_id, handoff)
    by_game = {h.entry_id: game_id_of(h.fields) for h in unique.values()}
    results: dict[str, EntryResult] = {
        entry_id: EntryResult(entry_id, None, Outcome.SKIPPED_MALFORMED, detail=str(no_game_reason(h.fields)))
        for entry_id, h in unique.items()
        if by_game[entry_id] is None
    }
    released: list[EntryResult] = []
    lobby_entries: list[OutboxEntry] = []
    per_game: dict[str, list[Handoff]] = {}
    for handoff in unique.values():
        game = by_game[handoff.entry_id]
        if game is not None:
            per_game.setdefault(game, []).append(handoff)
    game_ids = sorted(per_game)
    if game_ids:
        with uow:
            fold = _LockedFold(uow, game_ids, now_ms)
            for game_id in game_ids:
                fold.game(game_id, per_game[game_id], results, released)
            lobby_entries = fold.write()
    ordered = [results[entry_id] for entry_id in unique]
    for handoff, result in zip(unique.values(), ordered, strict=True):
        _log_result(result, handoff.fields.get(FIELD_EVENT_TYPE))
    for result in released:
        _log_result(result, None)
    return BatchResult(ordered, released, lobby_entries)


class _LockedFold:
    """The state of one transaction: locked cursors and records, and what to write back."""

    def __init__(self, uow: HealthConsumerUnitOfWork, game_ids: list[str], now_ms: int) -> None:
        self.uow = uow
        self.now_ms = now_ms
        locked = uow.lock(game_ids)
        self.cursors = locked.cursors
        self.parked = locked.parked
        self.records: dict[str, GameRecord | None] = dict.fromkeys(game_ids)
        self.records.update(locked.records)
        self.changed_records: dict[str, GameRecord] = {}
        self.moved_cursors: set[str] = set()
        self.snapshots: list[QueuedSnapshot] = []
        self.to_park: list[Handoff] = []
        self.to_unpark: list[tuple[str, str]] = []

    def game(
        self, game_id: str, handed_in: list[Handoff], results: dict[str, EntryResult], released: list[EntryResult]
    ) -> None:
        if game_id not in self.cursors:  # a new id that breaks the game-id rule: no state for it, ever
            detail = game_id_problem(game_id) or "no cursor for the game"
            for handoff in handed_in:
                results[handoff.entry_id] = EntryResult(
                    handoff.entry_id, game_id, Outcome.SKIPPED_MALFORMED, detail=detail
                )
            return
        parked = {h.entry_id: h for h in self.parked.get(game_id, [])}
        handed = {h.entry_id: h for h in handed_in}
        candidates = {**parked, **handed}
        waiting = False
        for entry_id in sorted(candidates, key=StreamId.parse):
            handoff = candidates[entry_id]
            result = self._fold_one(game_id, handoff, blocked=waiting)
            waits = result.outcome is Outcome.PARKED
            waiting = waiting or waits
            if waits and entry_id in handed:
                stored = parked.get(entry_id)
                if stored is None or stored.prev_entry_id != handoff.prev_entry_id:
                    self.to_park.append(handoff)  # new, or re-chained by the order repair
            elif not waits and entry_id in parked:
                self.to_unpark.append((game_id, entry_id))
            if entry_id in handed:
                results[entry_id] = result
            elif not waits:
                released.append(result)

    def _fold_one(self, game_id: str, handoff: Handoff, *, blocked: bool) -> EntryResult:
        cursor = self.cursors[game_id]
        if blocked and (cursor.last_entry_id is None or is_after(handoff.entry_id, cursor.last_entry_id)):
            return EntryResult(handoff.entry_id, game_id, Outcome.PARKED, detail="an earlier entry of the game waits")
        step = fold_entry(
            entry_id=handoff.entry_id,
            fields=handoff.fields,
            prev_entry_id=handoff.prev_entry_id,
            cursor=cursor,
            record=self.records[game_id],
            now_ms=self.now_ms,
        )
        if step.outcome.consumes:
            self.cursors[game_id] = step.cursor
            self.moved_cursors.add(game_id)
        if step.record_changed and step.record is not None:
            self.records[game_id] = step.record
            self.changed_records[game_id] = step.record
        if step.snapshot is not None:
            self.snapshots.append(QueuedSnapshot(handoff.entry_id, step.cursor.lobby_seq, step.snapshot))
        return EntryResult(
            handoff.entry_id,
            game_id,
            step.outcome,
            step.transition,
            published=step.snapshot is not None,
            detail=step.detail,
        )

    def write(self) -> list[OutboxEntry]:
        """Commit what changed (nothing when nothing did); the Lobby outbox rows committed."""
        if not (self.moved_cursors or self.to_park or self.to_unpark):
            return []
        writes = ConsumerWrites(
            now_ms=self.now_ms,
            records=[self.changed_records[g] for g in sorted(self.changed_records)],
            cursors=[self.cursors[g] for g in sorted(self.moved_cursors)],
            snapshots=self.snapshots,
            park=self.to_park,
            unpark=self.to_unpark,
        )
        return list(self.uow.commit(writes))


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
