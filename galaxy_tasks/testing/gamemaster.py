"""The Game Master's ``gamemaster`` tables in memory, and the health consumer's unit of work over them.

:class:`FakeDatabase` holds what is committed: the game records, the consumer
cursors, the Lobby outbox and the parking of out-of-order entries.
:class:`FakeHealthConsumerUnitOfWork` stands in for
``adapters/postgres/health_consumer_uow.py`` with the semantics of its
transaction: entering starts one on a copy, ``commit`` publishes the copy,
leaving without a commit rolls everything back (the parking included), and
writing a row the transaction did not lock fails loudly, as a broken locking
discipline would against PostgreSQL.  ``tests/integration/
test_gamemaster_uow_contract.py`` runs the same checks against both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Self

from galaxy_tasks.domain.errors import ValueRefused
from galaxy_tasks.domain.game_ids import game_id_problem
from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord, LobbySnapshot
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.ports.gamemaster import ConsumerWrites, LockedGames
from galaxy_tasks.ports.outbox import OutboxEntry


@dataclass(frozen=True)
class OutboxRow:
    """One row of ``gamemaster.lobby_outbox``."""

    id: int
    game_id: str
    stream_entry_id: str
    snapshot: LobbySnapshot
    seq: int = 0
    """The snapshot's number within its game (1, 2, ...)."""


@dataclass(frozen=True)
class ParkedRow:
    """One row of ``gamemaster.health_event_parked`` (primary key ``(game_id, entry_id)``)."""

    game_id: str
    entry_id: str
    prev_entry_id: str | None
    fields: Mapping[str, str]
    parked_at_ms: int

    def handoff(self) -> Handoff:
        return Handoff(self.entry_id, dict(self.fields), self.prev_entry_id)


ParkingKey = tuple[str, str]
"""``(game_id, entry_id)``: the primary key of the parking table."""


@dataclass(frozen=True)
class DatabaseState:
    """A frozen copy of everything in a :class:`FakeDatabase`, for "nothing changed" checks."""

    records: dict[str, GameRecord]
    cursors: dict[str, ConsumerCursor]
    outbox: tuple[OutboxRow, ...]
    updated_at_ms: dict[str, int]
    parked: dict[ParkingKey, ParkedRow]
    cursor_updated_at_ms: dict[str, int]


@dataclass
class FakeDatabase:
    """The committed state the unit of work, the Lobby outbox and the order repair store share.

    ``now_ms`` stands for PostgreSQL's ``now()``: the time stamped on newly
    parked rows and on cursors when they are created or saved.
    """

    records: dict[str, GameRecord] = field(default_factory=dict)
    cursors: dict[str, ConsumerCursor] = field(default_factory=dict)
    outbox: list[OutboxRow] = field(default_factory=list)
    updated_at_ms: dict[str, int] = field(default_factory=dict)
    parked: dict[ParkingKey, ParkedRow] = field(default_factory=dict)
    cursor_updated_at_ms: dict[str, int] = field(default_factory=dict)
    next_outbox_id: int = 1
    commits: int = 0
    now_ms: int = 0

    def add_record(self, game_id: str, status: str, engine_health: str = "", current_turn: int = 0) -> GameRecord:
        record = GameRecord(game_id, status, engine_health, current_turn)
        self.records[game_id] = record
        return record

    def add_parked(self, handoff: Handoff, *, parked_at_ms: int | None = None) -> ParkedRow:
        """Seed a parked row directly (as if committed earlier)."""
        game_id = handoff.fields["game_id"]
        row = ParkedRow(
            game_id,
            handoff.entry_id,
            handoff.prev_entry_id,
            dict(handoff.fields),
            self.now_ms if parked_at_ms is None else parked_at_ms,
        )
        self.parked[(game_id, handoff.entry_id)] = row
        return row

    def state(self) -> DatabaseState:
        return DatabaseState(
            dict(self.records),
            dict(self.cursors),
            tuple(self.outbox),
            dict(self.updated_at_ms),
            dict(self.parked),
            dict(self.cursor_updated_at_ms),
        )

    def outbox_of(self, game_id: str) -> list[OutboxRow]:
        return [row for row in self.outbox if row.game_id == game_id]

    def parked_of(self, game_id: str) -> list[ParkedRow]:
        """The game's parked rows in stream order."""
        rows = [row for (game, _), row in self.parked.items() if game == game_id]
        return sorted(rows, key=lambda row: StreamId.parse(row.entry_id))

    def parked_ids(self, game_id: str) -> list[str]:
        return [row.entry_id for row in self.parked_of(game_id)]


@dataclass
class _Transaction:
    records: dict[str, GameRecord]
    cursors: dict[str, ConsumerCursor]
    outbox: list[OutboxRow]
    updated_at_ms: dict[str, int]
    parked: dict[ParkingKey, ParkedRow]
    cursor_updated_at_ms: dict[str, int]
    next_outbox_id: int
    locked_cursors: set[str] = field(default_factory=set)
    locked_records: set[str] = field(default_factory=set)
    done: bool = False


class FakeHealthConsumerUnitOfWork:
    """``HealthConsumerUnitOfWork`` over a :class:`FakeDatabase`.

    Entering copies the committed state; :meth:`commit` publishes the copy;
    leaving the ``with`` block without a commit drops it (rollback) — the
    parking included.  Writes to rows the transaction did not lock fail
    loudly, as would a broken locking discipline against the real database;
    the parking of a game counts as locked with the game's cursor.

    As with the SQL: :meth:`lock` creates missing cursors (committed with
    whatever else commits) and returns parked rows in primary-key (text)
    order, which is not stream order; parking in :meth:`commit` is an upsert
    that replaces only a stored copy's ``prev_entry_id`` (fields and
    ``parked_at`` stay); two outbox rows of one game with the same number are
    refused as the unique index refuses them (``ValueRefused``, SQLSTATE 23505).
    """

    def __init__(self, db: FakeDatabase, *, fail_on_commit: BaseException | None = None) -> None:
        self.db = db
        self.fail_on_commit = fail_on_commit
        self.calls: list[str] = []
        self.entered = 0
        self.commits = 0
        self.rollbacks = 0
        self.lock_requests: list[tuple[str, ...]] = []
        self.committed_writes: list[ConsumerWrites] = []
        """What each :meth:`commit` was asked to write (also when it then failed)."""
        self._tx: _Transaction | None = None

    def __enter__(self) -> Self:
        if self._tx is not None:
            raise RuntimeError("unit of work entered twice")
        self.entered += 1
        db = self.db
        self._tx = _Transaction(
            records=dict(db.records),
            cursors=dict(db.cursors),
            outbox=list(db.outbox),
            updated_at_ms=dict(db.updated_at_ms),
            parked=dict(db.parked),
            cursor_updated_at_ms=dict(db.cursor_updated_at_ms),
            next_outbox_id=db.next_outbox_id,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tx, self._tx = self._tx, None
        if tx is not None and not tx.done:
            self.rollbacks += 1

    def _active(self, call: str) -> _Transaction:
        self.calls.append(call)
        if self._tx is None:
            raise RuntimeError(f"{call} outside the unit of work's 'with' block")
        if self._tx.done:
            raise RuntimeError(f"{call} after commit")
        return self._tx

    def lock(self, game_ids: Sequence[str]) -> LockedGames:
        tx = self._active("lock")
        wanted = sorted(set(game_ids))
        self.lock_requests.append(tuple(game_ids))
        cursors: dict[str, ConsumerCursor] = {}
        for game_id in wanted:
            known = game_id in tx.cursors or game_id in tx.records
            if not known and game_id_problem(game_id) is not None:
                continue  # as the SQL: no cursor for a new id that breaks the game-id rule
            if game_id not in tx.cursors:
                tx.cursors[game_id] = ConsumerCursor(game_id)
                tx.cursor_updated_at_ms[game_id] = self.db.now_ms
            tx.locked_cursors.add(game_id)
            cursors[game_id] = tx.cursors[game_id]
        records: dict[str, GameRecord] = {}
        for game_id in wanted:
            record = tx.records.get(game_id)
            if record is not None:
                tx.locked_records.add(game_id)
                records[game_id] = record
        parked: dict[str, list[Handoff]] = {}
        for game_id, entry_id in sorted(tx.parked):
            if game_id in cursors:
                parked.setdefault(game_id, []).append(tx.parked[(game_id, entry_id)].handoff())
        return LockedGames(cursors, records, parked)

    def commit(self, writes: ConsumerWrites) -> list[OutboxEntry]:
        tx = self._active("commit")
        self.committed_writes.append(writes)
        self._write_rows(tx, writes)
        self._write_parking(tx, writes)
        if self.fail_on_commit is not None:
            raise self.fail_on_commit
        db = self.db
        db.records = tx.records
        db.cursors = tx.cursors
        db.outbox = tx.outbox
        db.updated_at_ms = tx.updated_at_ms
        db.parked = tx.parked
        db.cursor_updated_at_ms = tx.cursor_updated_at_ms
        db.next_outbox_id = tx.next_outbox_id
        db.commits += 1
        tx.done = True
        self.commits += 1
        return [OutboxEntry(q.game_id, q.seq, q.snapshot.to_fields()) for q in writes.snapshots]

    def _write_rows(self, tx: _Transaction, writes: ConsumerWrites) -> None:
        for record in writes.records:
            if record.game_id not in tx.locked_records:
                raise AssertionError(f"record {record.game_id!r} saved without being locked")
            tx.records[record.game_id] = record
            tx.updated_at_ms[record.game_id] = writes.now_ms
        for cursor in writes.cursors:
            if cursor.game_id not in tx.locked_cursors:
                raise AssertionError(f"cursor {cursor.game_id!r} saved without being locked")
            tx.cursors[cursor.game_id] = cursor
            tx.cursor_updated_at_ms[cursor.game_id] = self.db.now_ms
        for queued in writes.snapshots:
            if queued.game_id not in tx.locked_cursors:
                raise AssertionError(f"snapshot of {queued.game_id!r} enqueued without its cursor locked")
            if any(row.game_id == queued.game_id and row.seq == queued.seq for row in tx.outbox):
                raise ValueRefused("23505", f"snapshot number {queued.seq} of {queued.game_id!r} enqueued twice")
            tx.outbox.append(
                OutboxRow(tx.next_outbox_id, queued.game_id, queued.stream_entry_id, queued.snapshot, queued.seq)
            )
            tx.next_outbox_id += 1

    def _write_parking(self, tx: _Transaction, writes: ConsumerWrites) -> None:
        for handoff in writes.park:
            game_id = handoff.fields["game_id"]
            if game_id not in tx.locked_cursors:
                raise AssertionError(f"entry of {game_id!r} parked without its cursor locked")
            key = (game_id, handoff.entry_id)
            stored = tx.parked.get(key)
            if stored is None:
                tx.parked[key] = ParkedRow(
                    game_id, handoff.entry_id, handoff.prev_entry_id, dict(handoff.fields), self.db.now_ms
                )
            else:
                tx.parked[key] = replace(stored, prev_entry_id=handoff.prev_entry_id)
        for game_id, entry_id in writes.unpark:
            if game_id not in tx.locked_cursors:
                raise AssertionError(f"entry of {game_id!r} unparked without its cursor locked")
            tx.parked.pop((game_id, entry_id), None)


def running_games(*games: str) -> FakeDatabase:
    """A database where each of ``games`` has a ``running``, healthy record at turn 3."""
    db = FakeDatabase()
    for game in games:
        db.add_record(game, "running", "healthy", 3)
    return db


def health_handoff(entry_id: str, game: str, prev: str | None = None, event_type: str = "container_oom") -> Handoff:
    """A ``runtime:health_events`` entry of ``game`` as the bridge hands it on."""
    return Handoff(entry_id, {"game_id": game, "event_type": event_type, "occurred_at_ms": "5"}, prev)


if TYPE_CHECKING:  # the fake must keep matching the protocol it stands in for
    from galaxy_tasks.ports.gamemaster import HealthConsumerUnitOfWork

    def _conforms(db: FakeDatabase) -> None:
        _uow: HealthConsumerUnitOfWork = FakeHealthConsumerUnitOfWork(db)
