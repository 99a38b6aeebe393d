"""In-memory doubles of the ports of galaxy_tasks, for the unit tests.

Every ``Fake…`` here implements one ``typing.Protocol`` of
:mod:`galaxy_tasks.ports`, :mod:`galaxy_tasks.service.supervisor` or
:mod:`galaxy_tasks.service.order_repair` with the
semantics of its real adapter (PostgreSQL transaction, Redis stream, Lua-fenced
state, ``SET NX PX`` lease) and records what was asked of it, so tests can
check both the outcome and the conversation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Self

from galaxy_tasks.domain.errors import BackendUnavailable
from galaxy_tasks.domain.game_ids import game_id_problem
from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord, LobbySnapshot
from galaxy_tasks.domain.rtmanager.inspect import InspectObservation
from galaxy_tasks.domain.stream_ids import BEGINNING, StreamId, is_after
from galaxy_tasks.ports import (
    BridgeState,
    ConsumerWrites,
    Handoff,
    ListedContainer,
    LockedGames,
    OutboxEntry,
    OutboxPage,
    RetentionReport,
    RunningRecord,
    StreamEntry,
    StreamInfo,
)
from galaxy_tasks.service.order_repair import StalledGame
from galaxy_tasks.testing.store import FakeInspectBaselines, FakeProbeStates

__all__ = ["FakeInspectBaselines", "FakeProbeStates"]  # shipped with the package; re-exported for the tests

# --------------------------------------------------------------------------- clock


class FakeClock:
    """A settable clock; with ``tick`` every reading moves it forward by that much."""

    def __init__(self, start: float = 0.0, *, tick: float = 0.0) -> None:
        self.now = start
        self.tick = tick
        self.readings = 0

    def __call__(self) -> float:
        value = self.now
        self.readings += 1
        self.now += self.tick
        return value

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --------------------------------------------------------------------------- PostgreSQL: the GM database


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
    ``parked_at`` stay); two outbox rows of one game with the same number fail
    like the unique index.
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
                raise AssertionError(f"snapshot number {queued.seq} of {queued.game_id!r} enqueued twice")
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


class FakeLobbyOutbox:
    """``StreamOutbox`` over a :class:`FakeDatabase`'s Lobby outbox and an in-memory ``gm:lobby_events``.

    Like the real one it keeps, per game, the highest snapshot number already
    appended: the unlocked :meth:`publish_committed` appends only a game's next
    number, the locked :meth:`relay_games` anything past the mark, and neither
    appends a number twice.  ``locked_games`` stand for cursors other
    transactions hold (skipped by a relay that does not wait).
    """

    def __init__(self, db: FakeDatabase, *, locked_games: Iterable[str] = (), fail_times: int = 0) -> None:
        self.db = db
        self.locked_games = set(locked_games)
        self.fail_times = fail_times
        self.stream: list[dict[str, str]] = []
        self.published_seq: dict[str, int] = {}
        self.relay_calls: list[tuple[tuple[str, ...], bool]] = []
        self.publish_calls: list[tuple[str, ...]] = []
        self.scan_calls: list[tuple[int, int]] = []
        self.retention: RetentionReport | None = None
        """What :meth:`enforce_retention` reports (set by a test)."""
        self.retention_calls = 0
        self.once_keys: set[str] = set()
        self.forget_calls = 0

    def _fail_if_asked(self) -> None:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise BackendUnavailable("redis", "fake outage")

    def publish_committed(self, entries: Sequence[OutboxEntry]) -> tuple[int, list[str]]:
        self.publish_calls.append(tuple(str(e.fields.get("game_id", e.game_id)) for e in entries))
        self._fail_if_asked()
        appended, out_of_turn = 0, set()
        for entry in entries:
            high = self.published_seq.get(entry.game_id, 0)
            if entry.seq == high + 1:
                self.stream.append(dict(entry.fields))
                self.published_seq[entry.game_id] = entry.seq
                appended += 1
            elif entry.seq > high:
                out_of_turn.add(entry.game_id)
        return appended, sorted(out_of_turn)

    def relay_games(self, game_ids: Sequence[str], *, wait_for_locks: bool) -> int:
        self.relay_calls.append((tuple(game_ids), wait_for_locks))
        self._fail_if_asked()
        games = set(game_ids)
        if not wait_for_locks:
            games -= self.locked_games
        rows = sorted((row for row in self.db.outbox if row.game_id in games), key=lambda r: (r.game_id, r.seq))
        appended = 0
        for row in rows:
            if row.seq > self.published_seq.get(row.game_id, 0):
                self.stream.append(row.snapshot.to_fields())
                self.published_seq[row.game_id] = row.seq
                appended += 1
        relayed = {row.id for row in rows}
        self.db.outbox = [row for row in self.db.outbox if row.id not in relayed]
        return appended

    def scan_page(self, after: int, limit: int) -> OutboxPage:
        """Every game with rows on the page is one to visit (this relay deletes rows as it appends them)."""
        self.scan_calls.append((after, limit))
        page = sorted((row for row in self.db.outbox if row.id > after), key=lambda r: r.id)[:limit]
        games: list[str] = []
        for row in page:
            if row.game_id not in games:
                games.append(row.game_id)
        unappended = sum(1 for row in page if row.seq > self.published_seq.get(row.game_id, 0))
        return OutboxPage(games, unappended, page[-1].id if len(page) == limit else 0)

    def backlog(self) -> int:
        return sum(1 for row in self.db.outbox if row.seq > self.published_seq.get(row.game_id, 0))

    def append_once(self, key: str, fields: Mapping[str, str]) -> bool:
        if key in self.once_keys:
            return False
        self.once_keys.add(key)
        self.stream.append(dict(fields))
        return True

    def forget_idle_games(self, idle_ms: int, batch: int) -> int:
        """Forgets the marks of games with no rows left (``idle_ms`` is not modelled)."""
        self.forget_calls += 1
        idle = [g for g in self.published_seq if all(row.game_id != g for row in self.db.outbox)][:batch]
        for game_id in idle:
            del self.published_seq[game_id]
        return len(idle)

    def enforce_retention(self) -> RetentionReport | None:
        self.retention_calls += 1
        return self.retention

    def stream_of(self, game_id: str) -> list[dict[str, str]]:
        return [fields for fields in self.stream if fields["game_id"] == game_id]


# --------------------------------------------------------------------------- Redis: stream, bridge state, lease


class FakeStreamReader:
    """``StreamReader`` over a list: an append-only stream with Redis's XTRIM / XDEL bookkeeping.

    Ids are ``<ms>-0`` with ``ms`` counting up from ``first_ms`` (small numbers by
    default, so tests cross the ``9-0`` → ``10-0`` boundary that string
    comparison gets wrong).
    """

    def __init__(self, *, exists: bool = True, first_ms: int = 1) -> None:
        self.entries: list[StreamEntry] = []
        self.exists = exists
        self.entries_added = 0
        self.last_entry_id = BEGINNING
        self.max_deleted_entry_id = BEGINNING
        self.fail_reads = 0
        self.reads: list[tuple[str, int]] = []
        self._next_ms = first_ms

    def append(self, fields: Mapping[str, str], entry_id: str | None = None) -> str:
        if entry_id is None:
            entry_id = f"{self._next_ms}-0"
        if not is_after(entry_id, self.last_entry_id):
            raise ValueError(f"{entry_id} is not after {self.last_entry_id}")
        self._next_ms = StreamId.parse(entry_id).ms + 1
        self.entries.append(StreamEntry(entry_id, dict(fields)))
        self.exists = True
        self.entries_added += 1
        self.last_entry_id = entry_id
        return entry_id

    def read_before(self, offset: str, limit: int) -> list[StreamEntry]:
        older = [e for e in self.entries if not is_after(e.entry_id, offset)]
        return list(reversed(older))[:limit]

    def append_many(self, many: Iterable[Mapping[str, str]]) -> list[str]:
        return [self.append(fields) for fields in many]

    def trim(self, maxlen: int) -> None:
        """XTRIM MAXLEN: drop the oldest entries beyond ``maxlen``.

        As in Redis, trimming leaves ``max-deleted-entry-id`` alone (only XDEL
        moves it); ``entries-added`` minus ``length`` tells what went.
        """
        self.entries = self.entries[max(len(self.entries) - maxlen, 0) :]

    def delete(self, entry_id: str) -> None:
        """XDEL of one entry: moves ``max-deleted-entry-id``."""
        kept = [e for e in self.entries if e.entry_id != entry_id]
        if len(kept) < len(self.entries) and is_after(entry_id, self.max_deleted_entry_id):
            self.max_deleted_entry_id = entry_id
        self.entries = kept

    def read_after(self, offset: str, count: int, block_ms: int) -> list[StreamEntry]:
        self.reads.append((offset, count))
        if self.fail_reads > 0:
            self.fail_reads -= 1
            raise BackendUnavailable("redis", "fake outage")
        return [e for e in self.entries if is_after(e.entry_id, offset)][:count]

    def info(self) -> StreamInfo | None:
        if not self.exists:
            return None
        return StreamInfo(
            length=len(self.entries),
            last_entry_id=self.last_entry_id,
            entries_added=self.entries_added,
            max_deleted_entry_id=self.max_deleted_entry_id,
            first_entry_id=self.entries[0].entry_id if self.entries else None,
        )

    def count_after(self, offset: str, limit: int) -> int:
        return min(sum(1 for e in self.entries if is_after(e.entry_id, offset)), limit)


class FakeLease:
    """``Lease`` in memory.

    ``held_elsewhere`` makes :meth:`acquire` fail; ``renewals_before_loss``
    lets that many renewals succeed and loses the lease on the next one;
    :meth:`lose` takes it away at once (another holder took over).
    """

    def __init__(
        self, holder: str = "test-host:1:abcd", *, held_elsewhere: bool = False, renewals_before_loss: int | None = None
    ) -> None:
        self._holder = holder
        self.held_elsewhere = held_elsewhere
        self.renewals_before_loss = renewals_before_loss
        self.held = False
        self.acquires = 0
        self.renewals = 0
        self.releases = 0

    @property
    def holder(self) -> str:
        return self._holder

    def acquire(self) -> bool:
        self.acquires += 1
        if self.held_elsewhere:
            return False
        self.held = True
        return True

    def renew(self) -> bool:
        if not self.held:
            return False
        if self.renewals_before_loss is not None and self.renewals >= self.renewals_before_loss:
            self.lose()
            return False
        self.renewals += 1
        return True

    def release(self) -> None:
        self.releases += 1
        self.held = False

    def lose(self) -> None:
        self.held = False
        self.held_elsewhere = True


class FakeBridgeStateStore:
    """``BridgeStateStore`` in memory, fenced by an optional :class:`FakeLease`.

    ``save`` merges ``last_by_partition`` into what is stored (``HSET``), as the
    real Lua script does, and refuses to store anything once the lease is gone.
    Like the Redis store, ``load`` trusts the saved ``entries_through_offset``
    only for the offset it was saved with (an operator may move the offset).
    ``on_save`` sees each accepted offset before it is stored.
    """

    def __init__(
        self,
        *,
        offset: str = BEGINNING,
        last_by_partition: Mapping[str, str] | None = None,
        entries_through_offset: int | None = None,
        lease: FakeLease | None = None,
        on_save: Callable[[str], None] | None = None,
    ) -> None:
        self.offset = offset
        self.last_by_partition: dict[str, str] = dict(last_by_partition or {})
        self.entries_through_offset = entries_through_offset
        self._progress_offset: str | None = None if entries_through_offset is None else offset
        self.lag: int | None = None
        self.lease = lease
        self.on_save = on_save
        self.loads = 0
        self.saves: list[tuple[str, dict[str, str], int]] = []
        self.refused_saves = 0
        self.replay_request: str | None = None
        self.replay_checks = 0

    def load(self) -> BridgeState:
        self.loads += 1
        through = self.entries_through_offset if self._progress_offset == self.offset else None
        return BridgeState(self.offset, dict(self.last_by_partition), entries_through_offset=through)

    def save(self, offset: str, last_by_partition: Mapping[str, str], *, lag: int, entries_through_offset: int) -> bool:
        if self.lease is not None and not self.lease.held:
            self.refused_saves += 1
            return False
        if self.on_save is not None:
            self.on_save(offset)
        self.offset = offset
        self.last_by_partition.update(last_by_partition)
        self.lag = lag
        self.entries_through_offset = entries_through_offset
        self._progress_offset = offset
        self.saves.append((offset, dict(last_by_partition), lag))
        return True

    def forget(self, last_by_partition: Mapping[str, str]) -> bool:
        if self.lease is not None and not self.lease.held:
            return False
        for partition, entry_id in last_by_partition.items():
            if self.last_by_partition.get(partition) == entry_id:
                del self.last_by_partition[partition]
        return True

    def apply_replay_request(self) -> str | None:
        self.replay_checks += 1
        if self.replay_request is None or (self.lease is not None and not self.lease.held):
            return None
        self.offset, self.replay_request = self.replay_request, None
        self._progress_offset = None
        return self.offset

    def move_offset_by_hand(self, offset: str) -> None:
        """What an operator does with ``SET``: the saved progress no longer matches."""
        self.offset = offset


class FakeOrderRepairStore:
    """``OrderRepairStore`` over a :class:`FakeDatabase`, a :class:`FakeStreamReader` and the bridge's map.

    ``handed_on`` is the bridge's last entry handed on per game (its
    ``last_by_partition``).  :meth:`stalled_games` finds what the PostgreSQL +
    Redis adapter finds: first games whose oldest parked row is older than the
    cutoff (target: their newest parked entry), then games whose last
    handed-on entry is older than the cutoff while their cursor is short of it
    and has not been saved since the cutoff.  Everything it reads is committed.
    """

    def __init__(self, db: FakeDatabase, stream: FakeStreamReader, handed_on: Mapping[str, str] | None = None) -> None:
        self.db = db
        self.stream = stream
        self.handed_on: dict[str, str] = dict(handed_on or {})
        self.stalled_calls: list[tuple[int, int]] = []
        self.entries_calls: list[tuple[str, str | None, str]] = []
        self.parked_calls: list[str] = []
        self.floor: str | None = None

    def _cursor_entry(self, game_id: str) -> str | None:
        cursor = self.db.cursors.get(game_id)
        return None if cursor is None else cursor.last_entry_id

    def stalled_games(self, cutoff_ms: int, limit: int) -> list[StalledGame]:
        self.stalled_calls.append((cutoff_ms, limit))
        stalled: dict[str, StalledGame] = {}
        for game_id in sorted({game for game, _ in self.db.parked}):
            if len(stalled) >= limit:
                break
            rows = self.db.parked_of(game_id)
            if min(row.parked_at_ms for row in rows) < cutoff_ms:
                cursor_entry = self._cursor_entry(game_id)
                waited = min(rows, key=lambda r: StreamId.parse(r.entry_id)).handoff().prev_entry_id
                gap = (
                    waited is not None
                    and (cursor_entry is None or is_after(waited, cursor_entry))
                    and self._gone(waited)
                )
                stalled[game_id] = StalledGame(game_id, cursor_entry, rows[-1].entry_id, "parked", gap=gap)
        for game_id, last in sorted(self.handed_on.items()):
            if len(stalled) >= limit:
                break
            if game_id in stalled or StreamId.parse(last).ms >= cutoff_ms:
                continue
            cursor = self.db.cursors.get(game_id)
            applied = None if cursor is None else cursor.last_entry_id
            if self._gone(last) and (applied is None or is_after(last, applied)):
                stalled[game_id] = StalledGame(game_id, applied, last, "behind", gap=True)
                continue
            if cursor is not None:
                quiet = self.db.cursor_updated_at_ms.get(game_id, 0) < cutoff_ms
                caught_up = cursor.last_entry_id is not None and not is_after(last, cursor.last_entry_id)
                if not quiet or caught_up:
                    continue
            stalled[game_id] = StalledGame(game_id, self._cursor_entry(game_id), last, "behind")
        return list(stalled.values())

    def _gone(self, entry_id: str) -> bool:
        """Older than the stream's first entry: trimmed away."""
        first = self.stream.entries[0].entry_id if self.stream.entries else None
        return first is None or is_after(first, entry_id)

    def protect_unapplied(self) -> str | None:
        """The oldest entry a repair may re-read, as the adapter finds it (kept in ``floor``)."""
        candidates: list[str] = []
        parked_games = {game for game, _ in self.db.parked}
        for game_id in set(self.handed_on) | parked_games:
            cursor_entry, last = self._cursor_entry(game_id), self.handed_on.get(game_id)
            caught_up = cursor_entry is not None and last is not None and not is_after(last, cursor_entry)
            if caught_up and game_id not in parked_games:
                continue
            if cursor_entry is not None:
                candidates.append(cursor_entry)
                continue
            rows = self.db.parked_of(game_id) if game_id in parked_games else []
            known = [i for r in rows for i in (r.entry_id, r.handoff().prev_entry_id) if i] + ([last] if last else [])
            if known:
                candidates.append(min(known, key=StreamId.parse))
        self.floor = min(candidates, key=StreamId.parse) if candidates else None
        return self.floor

    def parked_of(self, game_id: str) -> list[Handoff]:
        self.parked_calls.append(game_id)
        return [self.db.parked[key].handoff() for key in sorted(self.db.parked) if key[0] == game_id]

    def entries_of_game(self, game_id: str, after: str | None, through: str) -> list[StreamEntry]:
        self.entries_calls.append((game_id, after, through))
        return [
            StreamEntry(e.entry_id, dict(e.fields))
            for e in self.stream.entries
            if e.fields.get("game_id") == game_id
            and (after is None or is_after(e.entry_id, after))
            and not is_after(e.entry_id, through)
        ]


# --------------------------------------------------------------------------- Celery: the dispatcher


class FakeEntryDispatcher:
    """``EntryDispatcher`` that records what the broker would hold.

    ``fail_times`` makes that many calls raise :class:`BackendUnavailable`
    before anything is accepted; ``attempts`` keeps every call's handoffs,
    failed or not; ``on_send`` runs on each accepted call.
    """

    def __init__(self, *, fail_times: int = 0, on_send: Callable[[], None] | None = None) -> None:
        self.fail_times = fail_times
        self.on_send = on_send
        self.attempts: list[list[Handoff]] = []
        self.delivered: list[Handoff] = []
        self.modes: list[str] = []
        self.chunks: list[list[Handoff]] = []
        self.queued: list[int] = []
        """Successive answers of :meth:`waiting` (then 0)."""
        self.waiting_checks = 0

    def _accept(self, handoffs: list[Handoff]) -> None:
        self.attempts.append(handoffs)
        if self.fail_times > 0:
            self.fail_times -= 1
            raise BackendUnavailable("broker", "fake outage")
        if self.on_send is not None:
            self.on_send()
        self.delivered.extend(handoffs)

    def send_each(self, handoffs: Sequence[Handoff]) -> None:
        self._accept(list(handoffs))
        self.modes.append("each")

    def waiting(self) -> int:
        """What the broker holds that no worker took: ``queued`` when set, else none."""
        self.waiting_checks += 1
        return self.queued.pop(0) if self.queued else 0

    def send_chunks(self, chunks: Sequence[Sequence[Handoff]]) -> None:
        self._accept([h for chunk in chunks for h in chunk])
        self.modes.append("chunks")
        self.chunks.extend(list(chunk) for chunk in chunks)

    @property
    def delivered_ids(self) -> list[str]:
        return [h.entry_id for h in self.delivered]


# --------------------------------------------------------------------------- supervisor


class FakeLeaseView:
    """``LeaseView`` in memory: lease holders, and launch markers that expire on a :class:`FakeClock`."""

    def __init__(self, holders: Mapping[str, str] | None = None, *, clock: FakeClock | None = None) -> None:
        self.holders: dict[str, str] = dict(holders or {})
        self.clock = clock or FakeClock()
        self.markers: dict[str, float] = {}
        self.claims: list[tuple[str, float]] = []

    def holder_of(self, lease_key: str) -> str | None:
        return self.holders.get(lease_key)

    def claim_launch(self, marker_key: str, ttl_seconds: float) -> bool:
        self.claims.append((marker_key, ttl_seconds))
        now = self.clock.now
        expires = self.markers.get(marker_key)
        if expires is not None and expires > now:
            return False
        self.markers[marker_key] = now + ttl_seconds
        return True


if TYPE_CHECKING:  # the fakes must keep matching the protocols they stand in for
    from galaxy_tasks.ports import (
        BridgeStateStore,
        EntryDispatcher,
        HealthConsumerUnitOfWork,
        Lease,
        StreamOutbox,
        StreamReader,
    )
    from galaxy_tasks.service.order_repair import OrderRepairStore
    from galaxy_tasks.service.supervisor import LeaseView

    def _conforms(db: FakeDatabase) -> None:
        _uow: HealthConsumerUnitOfWork = FakeHealthConsumerUnitOfWork(db)
        _outbox: StreamOutbox = FakeLobbyOutbox(db)
        _reader: StreamReader = FakeStreamReader()
        _state: BridgeStateStore = FakeBridgeStateStore()
        _lease: Lease = FakeLease()
        _dispatcher: EntryDispatcher = FakeEntryDispatcher()
        _view: LeaseView = FakeLeaseView()
        _repair: OrderRepairStore = FakeOrderRepairStore(db, FakeStreamReader())


# --------------------------------------------------------------------------- Runtime Manager


class FakeRunningRecords:
    """``RunningRecords`` over a list."""

    def __init__(self, *records: RunningRecord) -> None:
        self.records = list(records)

    def running(self) -> list[RunningRecord]:
        return list(self.records)

    def exited(self) -> list[RunningRecord]:
        return []

    def running_container(self, game_id: str) -> str | None:
        return next((r.container_id for r in self.records if r.game_id == game_id), None)


class FakeContainerRuntime:
    """``ContainerRuntime``: a fixed list and fixed inspect results, counting the calls."""

    def __init__(self, listed: dict[str, ListedContainer], observations: dict[str, InspectObservation]) -> None:
        self.listed, self.observations = listed, observations
        self.list_calls = 0
        self.inspected: list[str] = []

    def list_managed(self) -> dict[str, ListedContainer]:
        self.list_calls += 1
        return dict(self.listed)

    def inspect(self, container_id: str) -> InspectObservation | None:
        self.inspected.append(container_id)
        return self.observations.get(container_id)


class FakeProber:
    """``Prober`` answering the given results in turn."""

    def __init__(self, *results: tuple[bool, str]) -> None:
        self.results = list(results)

    def probe(self, endpoint: str) -> tuple[bool, str]:
        return self.results.pop(0)


def running_games(*games: str) -> FakeDatabase:
    """A database where each of ``games`` has a ``running``, healthy record at turn 3."""
    db = FakeDatabase()
    for game in games:
        db.add_record(game, "running", "healthy", 3)
    return db


def health_handoff(entry_id: str, game: str, prev: str | None = None, event_type: str = "container_oom") -> Handoff:
    """A ``runtime:health_events`` entry of ``game`` as the bridge hands it on."""
    return Handoff(entry_id, {"game_id": game, "event_type": event_type, "occurred_at_ms": "5"}, prev)
