"""A value the database refuses costs only the entry that carried it (issue 11, item 1; SPEC §5 "Bad input").

The unit of work below refuses, as PostgreSQL would with SQLSTATE class 22 or
23, every transaction that writes a given entry's effect (its Lobby snapshot),
or anything at all for a given game: a chunk holding such an entry must still
apply every other entry, and transient errors must never be taken for refusals.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from galaxy_tasks.domain.errors import BackendUnavailable, PostgresUnavailable, ValueRefused
from galaxy_tasks.domain.gamemaster.consumer import Outcome
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.ports.gamemaster import ConsumerWrites
from galaxy_tasks.ports.outbox import OutboxEntry
from galaxy_tasks.service.health_consumer import apply_isolating_refusals
from galaxy_tasks.testing.gamemaster import FakeDatabase, FakeHealthConsumerUnitOfWork, health_handoff, running_games

NOW = 1_700_000_000_000


class RefusingUnitOfWork(FakeHealthConsumerUnitOfWork):
    def __init__(self, db: FakeDatabase, refuses: Callable[[ConsumerWrites], bool]) -> None:
        super().__init__(db)
        self.refuses = refuses
        self.refusals = 0

    def commit(self, writes: ConsumerWrites) -> list[OutboxEntry]:
        if self.refuses(writes):
            self.refusals += 1
            raise ValueRefused("22P05", "unsupported Unicode escape sequence")
        return super().commit(writes)


def test_an_entry_whose_effect_is_refused_is_skipped_as_malformed_and_the_rest_of_its_chunk_applies() -> None:
    db = running_games("g1", "g2", "g3")
    uow = RefusingUnitOfWork(db, lambda w: any(s.stream_entry_id == "2-0" for s in w.snapshots))
    batch = apply_isolating_refusals(
        uow, [health_handoff("1-0", "g1"), health_handoff("2-0", "g2"), health_handoff("3-0", "g3")], now_ms=NOW
    )

    outcomes = {r.entry_id: r.outcome for r in batch.results}
    assert outcomes == {"1-0": Outcome.APPLIED, "2-0": Outcome.SKIPPED_MALFORMED, "3-0": Outcome.APPLIED}
    refused = next(r for r in batch.results if r.entry_id == "2-0")
    assert refused.detail == "refused by the database: SQLSTATE 22P05"
    assert db.cursors["g2"].last_entry_id == "2-0", "its game's cursor moved past it: its successors are not stuck"
    assert db.records["g2"].status == "running", "and nothing of it was applied"
    assert db.records["g1"].status == db.records["g3"].status == "engine_unreachable"
    assert sorted(e.game_id for e in batch.lobby_entries) == ["g1", "g3"]


def test_an_entry_of_a_game_the_database_refuses_outright_is_skipped_with_no_state_written() -> None:
    db = running_games("g1")
    uow = RefusingUnitOfWork(db, lambda w: any(c.game_id == "bad" for c in w.cursors))
    batch = apply_isolating_refusals(uow, [health_handoff("1-0", "bad"), health_handoff("2-0", "g1")], now_ms=NOW)

    outcomes = {r.entry_id: r.outcome for r in batch.results}
    assert outcomes == {"1-0": Outcome.SKIPPED_MALFORMED, "2-0": Outcome.APPLIED}
    assert "bad" not in db.cursors
    assert db.records["g1"].status == "engine_unreachable"


def test_a_successor_of_a_refused_entry_in_the_same_chunk_applies_after_it() -> None:
    db = running_games("g1")
    uow = RefusingUnitOfWork(db, lambda w: any(s.stream_entry_id == "1-0" for s in w.snapshots))
    first = health_handoff("1-0", "g1")
    second = Handoff("2-0", {"game_id": "g1", "event_type": "probe_failed", "occurred_at_ms": "6"}, "1-0")
    batch = apply_isolating_refusals(uow, [first, second], now_ms=NOW)

    outcomes = {r.entry_id: r.outcome for r in batch.results}
    assert outcomes == {"1-0": Outcome.SKIPPED_MALFORMED, "2-0": Outcome.APPLIED}
    assert db.cursors["g1"].last_entry_id == "2-0"
    assert db.records["g1"].engine_health == "probe_failed"


def test_a_transient_error_is_raised_for_a_retry_never_taken_for_a_refusal() -> None:
    db = running_games("g1")
    uow = FakeHealthConsumerUnitOfWork(db, fail_on_commit=PostgresUnavailable("restarting"))
    with pytest.raises(BackendUnavailable):
        apply_isolating_refusals(uow, [health_handoff("1-0", "g1"), health_handoff("2-0", "g1")], now_ms=NOW)
    assert "g1" not in db.cursors


# --------------------------------------------------------------------------- the game-id rule


def test_an_entry_of_a_new_game_whose_id_breaks_the_rule_is_malformed_and_leaves_no_state() -> None:
    db = running_games("g1")
    uow = FakeHealthConsumerUnitOfWork(db)
    batch = apply_isolating_refusals(
        uow, [health_handoff("1-0", "new_game.1"), health_handoff("2-0", "g1")], now_ms=NOW
    )

    outcomes = {r.entry_id: (r.outcome, r.detail) for r in batch.results}
    assert outcomes["1-0"][0] is Outcome.SKIPPED_MALFORMED
    assert "breaks the game-id rule" in outcomes["1-0"][1]
    assert outcomes["2-0"][0] is Outcome.APPLIED
    assert "new_game.1" not in db.cursors, "no cursor for a junk id"


def test_an_entry_of_a_game_with_a_record_is_applied_whatever_its_id() -> None:
    db = running_games("legacy_game.1")
    batch = apply_isolating_refusals(
        FakeHealthConsumerUnitOfWork(db), [health_handoff("1-0", "legacy_game.1")], now_ms=NOW
    )
    assert [r.outcome for r in batch.results] == [Outcome.APPLIED]
    assert db.records["legacy_game.1"].status == "engine_unreachable"
