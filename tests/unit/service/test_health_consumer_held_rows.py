"""A game whose row another session holds stops only its own entries (issue 12, with flow control's chunks).

Chunks span many games in one transaction; a lock wait that times out
(SQLSTATE 55P03, :class:`RowLocked`) on one game's row must not hold every other
game of the chunk back for as long as the row is held.  The unit of work below
times out whenever a transaction locks a game in ``held``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from galaxy_tasks.domain.errors import BackendUnavailable, PostgresUnavailable, RowLocked
from galaxy_tasks.domain.gamemaster.consumer import Outcome
from galaxy_tasks.ports.gamemaster import LockedGames
from galaxy_tasks.service.health_consumer import consume
from galaxy_tasks.testing.gamemaster import FakeDatabase, FakeHealthConsumerUnitOfWork, health_handoff, running_games
from galaxy_tasks.testing.lobby import FakeLobbyOutbox

NOW = 1_700_000_000_000


class HeldRowsUnitOfWork(FakeHealthConsumerUnitOfWork):
    def __init__(self, db: FakeDatabase, held: set[str]) -> None:
        super().__init__(db)
        self.held = held
        self.locks: list[tuple[str, ...]] = []

    def lock(self, game_ids: Sequence[str]) -> LockedGames:
        self.locks.append(tuple(sorted(set(game_ids))))
        if self.held & set(game_ids):
            raise RowLocked("postgresql 55P03: canceling statement due to lock timeout")
        return super().lock(game_ids)


def test_a_chunk_with_a_held_game_applies_and_publishes_every_other_game_and_hands_the_held_entries_back() -> None:
    db = running_games("held", "g1", "g2")
    outbox = FakeLobbyOutbox(db)
    uow = HeldRowsUnitOfWork(db, held={"held"})
    chunk = [
        health_handoff("1-0", "g1"),
        health_handoff("2-0", "held"),
        health_handoff("3-0", "g2"),
        health_handoff("4-0", "held", prev="2-0", event_type="probe_recovered"),
        health_handoff("5-0", "g1", prev="1-0", event_type="probe_recovered"),
    ]
    batch = consume(uow, outbox, chunk, now_ms=NOW)
    assert [h.entry_id for h in batch.held] == ["2-0", "4-0"], "the held game's entries, in order, to retry"
    with pytest.raises(RowLocked):
        batch.results_for(chunk)  # a group commit retries its tasks then
    assert db.cursors["g1"].last_entry_id == "5-0"
    assert db.cursors["g2"].last_entry_id == "3-0"
    assert "held" not in db.cursors, "nothing of the held game"
    assert sorted({f["game_id"] for f in outbox.stream}) == ["g1", "g2"], "the others are published, not held back"
    assert uow.locks[0] == ("g1", "g2", "held"), "first the whole chunk, in one transaction"

    uow.held.clear()  # the row is free again: the retry of what was held applies it, nothing twice
    retried = consume(uow, outbox, batch.held, now_ms=NOW)
    assert [(r.entry_id, r.outcome) for r in retried.results] == [("2-0", Outcome.APPLIED), ("4-0", Outcome.APPLIED)]
    assert [f["engine_health_summary"] for f in outbox.stream_of("held")] == ["oom", "healthy"]


def test_a_chunk_of_one_held_game_is_retried_as_it_is() -> None:
    db = running_games("held")
    uow = HeldRowsUnitOfWork(db, held={"held"})
    with pytest.raises(RowLocked):
        consume(
            uow,
            FakeLobbyOutbox(db),
            [health_handoff("1-0", "held"), health_handoff("2-0", "held", prev="1-0")],
            now_ms=NOW,
        )
    assert len(uow.locks) == 1, "no game-by-game pass for a single game"


def test_other_transient_errors_are_not_taken_for_a_held_row() -> None:
    db = running_games("g1", "g2")
    uow = FakeHealthConsumerUnitOfWork(db, fail_on_commit=PostgresUnavailable("restarting"))
    with pytest.raises(BackendUnavailable):
        consume(uow, FakeLobbyOutbox(db), [health_handoff("1-0", "g1"), health_handoff("2-0", "g2")], now_ms=NOW)
    assert db.cursors == {}, "nothing applied game by game"
