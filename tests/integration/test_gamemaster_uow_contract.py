"""One contract for the Game Master's unit of work and Lobby outbox: the fake and PostgreSQL keep it alike.

The unit and property tests of the health consumer run on
:mod:`galaxy_tasks.testing.gamemaster` and :mod:`galaxy_tasks.testing.lobby`;
what they prove holds in production only as far as those fakes behave like
``SqlAlchemyHealthConsumerUnitOfWork`` and the ``PostgresStreamOutbox`` that
``bootstrap/root.py`` builds as ``lobby_outbox``.  Every test here runs against
both (the ``backend`` fixture), through the ports alone — and through
:func:`~galaxy_tasks.service.health_consumer.consume`, which drives them in
production — and reads back only what another session would see committed.

The PostgreSQL half needs the real PostgreSQL and Redis and fails loudly
without them; it never skips.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

import pytest
from sqlalchemy import text

from galaxy_tasks.bootstrap import Resources
from galaxy_tasks.config import Settings
from galaxy_tasks.contract import LOBBY_STREAM
from galaxy_tasks.domain.errors import ValueRefused
from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord, LobbySnapshot, QueuedSnapshot
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.ports.gamemaster import ConsumerWrites, HealthConsumerUnitOfWork, LockedGames
from galaxy_tasks.ports.outbox import OutboxEntry, StreamOutbox
from galaxy_tasks.service.health_consumer import consume
from galaxy_tasks.testing.gamemaster import FakeDatabase, FakeHealthConsumerUnitOfWork, health_handoff
from galaxy_tasks.testing.lobby import FakeLobbyOutbox
from tests.support.pipeline import Pipeline

OutboxRowKey = tuple[str, int, str]
"""``(game_id, seq, stream_entry_id)`` of a Lobby outbox row."""


@dataclass
class Backend:
    """A unit of work and a Lobby outbox on one database, and a reader of what is committed there."""

    name: str
    new_uow: Callable[[], HealthConsumerUnitOfWork]
    outbox: StreamOutbox
    add_game: Callable[[str, str, int], None]
    """``(game_id, status, current_turn)``: a record committed before the test's transactions."""
    records: Callable[[], dict[str, GameRecord]]
    cursors: Callable[[], dict[str, ConsumerCursor]]
    outbox_rows: Callable[[], list[OutboxRowKey]]
    """The Lobby outbox rows still in the table, in commit order."""
    lobby_stream: Callable[[], list[dict[str, str]]]
    """``gm:lobby_events`` as the Lobby reads it."""
    hold_cursor: Callable[[str], contextlib.AbstractContextManager[None]]
    """Another session holds the game's cursor row (an open transaction of another task)."""


def _fake_backend() -> Backend:
    db = FakeDatabase()
    outbox = FakeLobbyOutbox(db)

    def add_game(game_id: str, status: str, current_turn: int) -> None:
        db.add_record(game_id, status, "", current_turn)

    @contextlib.contextmanager
    def hold_cursor(game_id: str) -> Iterator[None]:
        outbox.locked_games.add(game_id)
        try:
            yield
        finally:
            outbox.locked_games.discard(game_id)

    return Backend(
        name="fake",
        new_uow=lambda: FakeHealthConsumerUnitOfWork(db),
        outbox=outbox,
        add_game=add_game,
        records=lambda: dict(db.records),
        cursors=lambda: dict(db.cursors),
        outbox_rows=lambda: [(row.game_id, row.seq, row.stream_entry_id) for row in db.outbox],
        lobby_stream=lambda: [dict(fields) for fields in outbox.stream],
        hold_cursor=hold_cursor,
    )


def _postgres_backend(pipeline: Pipeline, resources: Resources) -> Backend:
    engine = pipeline.engine

    def records() -> dict[str, GameRecord]:
        query = "SELECT game_id, status, engine_health, current_turn FROM gamemaster.runtime_records"
        with engine.connect() as conn:
            return {
                r.game_id: GameRecord(r.game_id, r.status, r.engine_health, r.current_turn)
                for r in conn.execute(text(query))
            }

    def cursors() -> dict[str, ConsumerCursor]:
        query = "SELECT game_id, last_entry_id, last_published_summary, lobby_seq FROM gamemaster.health_event_cursors"
        with engine.connect() as conn:
            return {
                r.game_id: ConsumerCursor(r.game_id, r.last_entry_id, r.last_published_summary, int(r.lobby_seq))
                for r in conn.execute(text(query))
            }

    def outbox_rows() -> list[OutboxRowKey]:
        query = "SELECT game_id, seq, stream_entry_id FROM gamemaster.lobby_outbox ORDER BY id"
        with engine.connect() as conn:
            return [(r.game_id, int(r.seq), r.stream_entry_id) for r in conn.execute(text(query))]

    def lobby_stream() -> list[dict[str, str]]:
        entries = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange(LOBBY_STREAM))
        return [fields for _, fields in entries]

    @contextlib.contextmanager
    def hold_cursor(game_id: str) -> Iterator[None]:
        with engine.connect() as conn, conn.begin():
            statement = "SELECT 1 FROM gamemaster.health_event_cursors WHERE game_id = :g FOR UPDATE"
            assert conn.execute(text(statement), {"g": game_id}).scalar_one() == 1
            yield

    return Backend(
        name="postgres",
        new_uow=resources.health_consumer_uow,
        outbox=resources.lobby_outbox,
        add_game=lambda game_id, status, turn: pipeline.add_games({game_id: status}, current_turn=turn),
        records=records,
        cursors=cursors,
        outbox_rows=outbox_rows,
        lobby_stream=lobby_stream,
        hold_cursor=hold_cursor,
    )


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The fake over a :class:`FakeDatabase`, or PostgreSQL and Redis built as ``bootstrap/root.py`` builds them."""
    if request.param == "fake":
        yield _fake_backend()
        return
    pipeline = cast(Pipeline, request.getfixturevalue("pipeline"))  # a fresh migrated database; fails, never skips
    resources = Resources(Settings.from_env(pipeline.env))
    try:
        yield _postgres_backend(pipeline, resources)
    finally:
        resources.close()


def _snapshot(record: GameRecord, seq: int, entry_id: str) -> QueuedSnapshot:
    return QueuedSnapshot(entry_id, seq, LobbySnapshot.of(record, 1_700_000_000_000 + seq))


class _Abandoned(Exception):
    """Raised inside a unit of work to leave it the way a failing task does."""


def _lock_and_abandon(backend: Backend, game_ids: list[str]) -> None:
    """Lock ``game_ids``, then fail before the commit."""
    with backend.new_uow() as uow:
        uow.lock(game_ids)
        raise _Abandoned


def _lock_and_commit(backend: Backend, game_ids: list[str], writes: ConsumerWrites) -> LockedGames:
    """One transaction of the consumer: lock ``game_ids``, write, commit; what the lock returned."""
    with backend.new_uow() as uow:
        locked = uow.lock(game_ids)
        uow.commit(writes)
    return locked


# --------------------------------------------------------------------------- lock


def test_lock_returns_every_games_cursor_created_if_missing_and_the_records_of_the_games_that_have_one(
    backend: Backend,
) -> None:
    backend.add_game("g1", "running", 3)
    locked = _lock_and_commit(backend, ["g2", "g1"], ConsumerWrites(now_ms=1))
    assert locked.cursors == {"g1": ConsumerCursor("g1"), "g2": ConsumerCursor("g2")}
    assert locked.records == {"g1": GameRecord("g1", "running", "", 3)}
    assert locked.parked == {}
    assert sorted(backend.cursors()) == ["g1", "g2"]


def test_lock_creates_no_cursor_for_a_new_id_breaking_the_game_id_rule_but_serves_one_with_a_record(
    backend: Backend,
) -> None:
    backend.add_game("legacy_game.1", "running", 0)
    locked = _lock_and_commit(backend, ["new_game.1", "legacy_game.1"], ConsumerWrites(now_ms=1))
    assert sorted(locked.cursors) == ["legacy_game.1"]
    assert sorted(locked.records) == ["legacy_game.1"]
    assert sorted(backend.cursors()) == ["legacy_game.1"], "a junk id leaves no row behind"


# --------------------------------------------------------------------------- commit and rollback


def test_a_commit_writes_records_cursors_and_outbox_rows_together_and_the_next_lock_sees_them(
    backend: Backend,
) -> None:
    backend.add_game("g1", "running", 3)
    written = GameRecord("g1", "engine_unreachable", "oom", 3)
    cursor = ConsumerCursor("g1", "5-0", "oom", lobby_seq=1)
    with backend.new_uow() as uow:
        uow.lock(["g1"])
        entries = uow.commit(
            ConsumerWrites(now_ms=7, records=[written], cursors=[cursor], snapshots=[_snapshot(written, 1, "5-0")])
        )
    assert [(e.game_id, e.seq, dict(e.fields)) for e in entries] == [
        ("g1", 1, _snapshot(written, 1, "5-0").snapshot.to_fields())
    ]
    assert backend.records() == {"g1": written}
    assert backend.cursors() == {"g1": cursor}
    assert backend.outbox_rows() == [("g1", 1, "5-0")]
    with backend.new_uow() as uow:
        again = uow.lock(["g1"])
    assert (again.records, again.cursors) == ({"g1": written}, {"g1": cursor})


def test_leaving_the_unit_of_work_without_commit_leaves_nothing_not_even_the_cursors_lock_created(
    backend: Backend,
) -> None:
    backend.add_game("g1", "running", 3)
    with backend.new_uow() as uow:
        uow.lock(["g1", "g2"])
    with pytest.raises(_Abandoned):
        _lock_and_abandon(backend, ["g1", "g3"])
    assert backend.cursors() == {}
    assert backend.records() == {"g1": GameRecord("g1", "running", "", 3)}


def test_a_commit_refused_for_a_snapshot_number_taken_leaves_nothing_of_its_transaction(backend: Backend) -> None:
    backend.add_game("g1", "running", 0)
    first = GameRecord("g1", "running", "healthy", 0)
    _lock_and_commit(backend, ["g1"], ConsumerWrites(now_ms=1, records=[first], snapshots=[_snapshot(first, 1, "1-0")]))
    second = GameRecord("g1", "engine_unreachable", "oom", 0)
    taken = ConsumerWrites(
        now_ms=2,
        records=[second],
        cursors=[ConsumerCursor("g1", "2-0", "oom", lobby_seq=1)],
        snapshots=[_snapshot(second, 1, "2-0")],  # number 1 is taken
    )
    with pytest.raises(ValueRefused) as refused:
        _lock_and_commit(backend, ["g1"], taken)
    assert refused.value.sqlstate == "23505"
    assert backend.records() == {"g1": first}
    assert backend.cursors() == {"g1": ConsumerCursor("g1")}
    assert backend.outbox_rows() == [("g1", 1, "1-0")]


# --------------------------------------------------------------------------- parking


def test_a_parked_entry_is_returned_by_every_lock_of_its_game_until_it_is_unparked(backend: Backend) -> None:
    backend.add_game("g1", "running", 0)
    parked = health_handoff("3-0", "g1", prev="2-0")
    _lock_and_commit(backend, ["g1"], ConsumerWrites(now_ms=1, park=[parked]))
    for _ in range(2):
        with backend.new_uow() as uow:
            locked = uow.lock(["g1", "g2"])
        assert locked.parked == {"g1": [parked]}
    _lock_and_commit(backend, ["g1"], ConsumerWrites(now_ms=2, unpark=[("g1", "3-0")]))
    with backend.new_uow() as uow:
        assert uow.lock(["g1"]).parked == {}


def test_parking_an_entry_again_replaces_only_its_predecessor_and_keeps_the_fields_first_stored(
    backend: Backend,
) -> None:
    backend.add_game("g1", "running", 0)
    first = health_handoff("5-0", "g1", prev="2-0", event_type="container_oom")
    _lock_and_commit(backend, ["g1"], ConsumerWrites(now_ms=1, park=[first]))
    again = health_handoff("5-0", "g1", prev="4-0", event_type="probe_failed")
    _lock_and_commit(backend, ["g1"], ConsumerWrites(now_ms=2, park=[again]))
    with backend.new_uow() as uow:
        assert uow.lock(["g1"]).parked == {"g1": [Handoff("5-0", first.fields, "4-0")]}


def test_parking_rolls_back_with_the_transaction(backend: Backend) -> None:
    backend.add_game("g1", "running", 0)
    kept = health_handoff("3-0", "g1", prev="2-0")
    _lock_and_commit(backend, ["g1"], ConsumerWrites(now_ms=1, park=[kept]))
    record = GameRecord("g1", "running", "oom", 0)
    refused = ConsumerWrites(  # parks and unparks, and the commit is refused (one snapshot number twice)
        now_ms=2,
        park=[health_handoff("4-0", "g1", prev="3-0")],
        unpark=[("g1", "3-0")],
        snapshots=[_snapshot(record, 1, "4-0"), _snapshot(record, 1, "4-0")],
    )
    with pytest.raises(ValueRefused):
        _lock_and_commit(backend, ["g1"], refused)
    with backend.new_uow() as uow:
        assert uow.lock(["g1"]).parked == {"g1": [kept]}


# --------------------------------------------------------------------------- the Lobby outbox


def test_committed_snapshots_are_appended_right_after_commit_only_in_each_games_turn(backend: Backend) -> None:
    backend.add_game("g1", "running", 0)
    entries: list[OutboxEntry] = []
    for seq, health in enumerate(("healthy", "oom"), start=1):
        record = GameRecord("g1", "running", health, 0)
        with backend.new_uow() as uow:
            uow.lock(["g1"])
            cursor = ConsumerCursor("g1", f"{seq}-0", health, lobby_seq=seq)  # as the consumer numbers them
            snapshots = [_snapshot(record, seq, f"{seq}-0")]
            entries.extend(
                uow.commit(ConsumerWrites(now_ms=seq, records=[record], cursors=[cursor], snapshots=snapshots))
            )
    first, second = entries
    assert backend.outbox.publish_committed([second]) == (0, ["g1"]), "number 1 is not out yet"
    assert backend.outbox.publish_committed([first]) == (1, [])
    assert backend.outbox.publish_committed([first, second]) == (1, []), "nothing twice"
    assert [f["engine_health_summary"] for f in backend.lobby_stream()] == ["healthy", "oom"]


def test_nothing_of_a_rolled_back_transaction_reaches_the_lobby_outbox_or_its_stream(backend: Backend) -> None:
    backend.add_game("g1", "running", 0)
    with pytest.raises(_Abandoned):
        _lock_and_abandon(backend, ["g1"])
    assert backend.outbox.relay_games(["g1"], wait_for_locks=True) == 0
    assert backend.outbox_rows() == []
    assert backend.lobby_stream() == []


def test_the_relay_skips_a_game_whose_cursor_another_session_holds_unless_it_waits(backend: Backend) -> None:
    backend.add_game("g1", "running", 0)
    record = GameRecord("g1", "running", "oom", 0)
    with backend.new_uow() as uow:
        uow.lock(["g1"])
        uow.commit(
            ConsumerWrites(
                now_ms=1, cursors=[ConsumerCursor("g1", "1-0", "oom", 1)], snapshots=[_snapshot(record, 1, "1-0")]
            )
        )
    with backend.hold_cursor("g1"):
        assert backend.outbox.relay_games(["g1"], wait_for_locks=False) == 0
        assert backend.lobby_stream() == []
    assert backend.outbox.relay_games(["g1"], wait_for_locks=False) == 1
    assert [f["engine_health_summary"] for f in backend.lobby_stream()] == ["oom"]


# --------------------------------------------------------------------------- through the health consumer


def test_an_event_moves_the_status_only_from_its_expected_status_and_otherwise_updates_the_health_alone(
    backend: Backend,
) -> None:
    backend.add_game("running", "running", 4)
    backend.add_game("unreachable", "engine_unreachable", 4)
    handoffs = [health_handoff("1-0", "running"), health_handoff("2-0", "unreachable")]  # container_oom
    consume(backend.new_uow(), backend.outbox, handoffs, now_ms=10)
    assert backend.records() == {
        "running": GameRecord("running", "engine_unreachable", "oom", 4),
        "unreachable": GameRecord("unreachable", "engine_unreachable", "oom", 4),
    }
    statuses = {f["game_id"]: f["runtime_status"] for f in backend.lobby_stream()}
    assert statuses == {"running": "engine_unreachable", "unreachable": "engine_unreachable"}


def test_the_cursor_moves_past_each_applied_entry_and_a_second_delivery_changes_nothing(backend: Backend) -> None:
    backend.add_game("g1", "running", 0)
    first = health_handoff("1-0", "g1", event_type="probe_failed")
    second = health_handoff("2-0", "g1", prev="1-0", event_type="container_started")
    consume(backend.new_uow(), backend.outbox, [first, second], now_ms=10)
    assert backend.cursors() == {"g1": ConsumerCursor("g1", "2-0", "healthy", lobby_seq=2)}
    records, stream = backend.records(), backend.lobby_stream()
    consume(backend.new_uow(), backend.outbox, [second, first], now_ms=11)
    assert (backend.records(), backend.lobby_stream()) == (records, stream)
    assert backend.cursors() == {"g1": ConsumerCursor("g1", "2-0", "healthy", lobby_seq=2)}


def test_an_entry_ahead_of_its_predecessor_waits_parked_and_is_applied_with_it_in_stream_order(
    backend: Backend,
) -> None:
    backend.add_game("g1", "running", 0)
    first = health_handoff("1-0", "g1", event_type="container_exited")
    second = health_handoff("2-0", "g1", prev="1-0", event_type="probe_recovered")
    waiting = consume(backend.new_uow(), backend.outbox, [second], now_ms=10)
    assert waiting.parked == ["2-0"]
    assert backend.records() == {"g1": GameRecord("g1", "running", "", 0)}
    assert backend.lobby_stream() == []
    consume(backend.new_uow(), backend.outbox, [first], now_ms=11)
    assert backend.records() == {"g1": GameRecord("g1", "running", "healthy", 0)}
    assert backend.cursors()["g1"].last_entry_id == "2-0"
    assert [(f["runtime_status"], f["engine_health_summary"]) for f in backend.lobby_stream()] == [
        ("engine_unreachable", "exited"),
        ("running", "healthy"),
    ]
    with backend.new_uow() as uow:
        assert uow.lock(["g1"]).parked == {}
