"""The Lobby's freshness, measured on Redis's clock: each committed health entry's age at its commit, each
Lobby entry's age (from the health entry that caused it) at its append; parked and duplicate entries,
and ids that are no stream id, are not measured; a clock that fails costs the measurement only."""

from __future__ import annotations

from prometheus_client import REGISTRY

from galaxy_tasks.domain.errors import RedisUnavailable
from galaxy_tasks.ports.outbox import OutboxEntry
from galaxy_tasks.service.freshness import observe_commits, observe_lobby_appends
from galaxy_tasks.service.health_consumer import consume
from galaxy_tasks.testing.gamemaster import FakeHealthConsumerUnitOfWork, health_handoff, running_games
from galaxy_tasks.testing.lobby import FakeLobbyOutbox

COMMIT = "galaxy_gm_health_entry_commit_seconds"
LOBBY = "galaxy_gm_lobby_entry_freshness_seconds"


def observed(name: str) -> tuple[float, float]:
    return (REGISTRY.get_sample_value(f"{name}_count") or 0.0, REGISTRY.get_sample_value(f"{name}_sum") or 0.0)


def grew(before: tuple[float, float], name: str) -> tuple[float, float]:
    count, total = observed(name)
    return count - before[0], round(total - before[1], 6)


class FixedClock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms
        self.calls = 0

    def now_ms(self) -> int:
        self.calls += 1
        return self.now


class DeadClock:
    def now_ms(self) -> int:
        raise RedisUnavailable("redis://127.0.0.1:1: connection refused")


def test_each_committed_entry_is_measured_from_its_stream_id_to_the_clock_after_the_commit() -> None:
    db = running_games("g1", "g2", "g3")
    before = observed(COMMIT)
    clock = FixedClock(1_700_000_002_500)

    batch = consume(
        FakeHealthConsumerUnitOfWork(db),
        FakeLobbyOutbox(db),
        [
            health_handoff("1700000000000-0", "g1"),
            health_handoff("1700000002000-0", "g2"),
            health_handoff("1700000002400-0", "g3", prev="1700000001000-0"),  # its predecessor never came: parked
        ],
        now_ms=1,
        clock=clock,
    )

    assert [r.outcome.value for r in batch.results] == ["applied", "applied", "parked"]
    assert grew(before, COMMIT) == (2, 3.0)  # 2.5 s and 0.5 s; the parked entry not yet
    assert clock.calls == 1  # one look at the clock per transaction


def test_an_entry_handed_in_again_after_its_commit_is_not_measured_twice() -> None:
    db = running_games("g1")
    handoff = health_handoff("1700000000000-0", "g1")
    consume(
        FakeHealthConsumerUnitOfWork(db), FakeLobbyOutbox(db), [handoff], now_ms=1, clock=FixedClock(1_700_000_000_100)
    )
    before = observed(COMMIT)

    consume(
        FakeHealthConsumerUnitOfWork(db), FakeLobbyOutbox(db), [handoff], now_ms=1, clock=FixedClock(1_700_000_009_000)
    )

    assert grew(before, COMMIT) == (0, 0.0)


def test_a_clock_that_does_not_answer_loses_the_measurement_and_nothing_else() -> None:
    db = running_games("g1")
    before = observed(COMMIT)

    batch = consume(
        FakeHealthConsumerUnitOfWork(db),
        FakeLobbyOutbox(db),
        [health_handoff("1700000000000-0", "g1")],
        now_ms=1,
        clock=DeadClock(),
    )

    assert [r.outcome.value for r in batch.results] == ["applied"]
    assert db.outbox_of("g1")
    assert grew(before, COMMIT) == (0, 0.0)


def test_lobby_entries_are_measured_from_the_health_entry_that_caused_them() -> None:
    before = observed(LOBBY)

    observe_lobby_appends(
        [
            OutboxEntry("g1", 1, {}, source_entry_id="1700000000000-5"),
            OutboxEntry("g2", 1, {}, source_entry_id="1700000000100-0"),
            OutboxEntry("g3", 1, {}),  # a row that keeps no source
        ],
        1_700_000_000_250,
    )

    assert grew(before, LOBBY) == (2, 0.4)


def test_ids_that_are_no_stream_id_are_not_measured() -> None:
    before = (observed(COMMIT), observed(LOBBY))

    observe_commits(["shell-call", ""], 1_700_000_000_000)
    observe_lobby_appends([OutboxEntry("g1", 1, {}, source_entry_id="x" * 5000)], 1_700_000_000_000)

    assert (grew(before[0], COMMIT), grew(before[1], LOBBY)) == ((0, 0.0), (0, 0.0))
