"""Publishing the Lobby outbox: ``after_commit`` and the periodic ``relay`` sweep of the outbox service."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from galaxy_tasks.contract import LOBBY_OUTBOX
from galaxy_tasks.domain.errors import BackendUnavailable
from galaxy_tasks.domain.gamemaster.records import GameRecord, LobbySnapshot
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.ports.outbox import OutboxEntry
from galaxy_tasks.service.health_consumer import apply_entries
from galaxy_tasks.service.outbox import after_commit, relay
from galaxy_tasks.testing.clock import FakeClock
from galaxy_tasks.testing.gamemaster import FakeDatabase, FakeHealthConsumerUnitOfWork, OutboxRow
from galaxy_tasks.testing.lobby import FakeLobbyOutbox


def _db_with_pending(*games: str) -> FakeDatabase:
    db = FakeDatabase()
    numbers: dict[str, int] = {}
    for index, game in enumerate(games, start=1):
        snapshot = LobbySnapshot.of(GameRecord(game, "running", f"s{index}", index), 1700000000000 + index)
        numbers[game] = numbers.get(game, 0) + 1
        db.outbox.append(OutboxRow(index, game, f"{index}-0", snapshot, seq=numbers[game]))
    db.next_outbox_id = len(games) + 1
    return db


def _published() -> float:
    return REGISTRY.get_sample_value("galaxy_gm_lobby_events_published_total") or 0.0


def _backlog_gauge() -> float | None:
    return REGISTRY.get_sample_value("galaxy_outbox_backlog", {"outbox": LOBBY_OUTBOX.label})


def test_relay_appends_every_pending_snapshot_and_empties_the_outbox() -> None:
    db = _db_with_pending("g1", "g2", "g1", "g3")
    outbox = FakeLobbyOutbox(db)
    assert relay(outbox, batch_games=10, time_budget_seconds=5, clock=FakeClock()) == 4
    assert outbox.backlog() == 0
    assert [f["engine_health_summary"] for f in outbox.stream_of("g1")] == ["s1", "s3"]


def test_relay_never_waits_for_games_locked_by_running_tasks() -> None:
    db = _db_with_pending("g1", "g2")
    outbox = FakeLobbyOutbox(db, locked_games={"g1"})
    assert relay(outbox, batch_games=10, time_budget_seconds=5, clock=FakeClock()) == 1
    assert {wait for _, wait in outbox.relay_calls} == {False}
    assert outbox.backlog() == 1


def test_relay_stops_when_only_locked_games_are_pending() -> None:
    db = _db_with_pending("g1")
    outbox = FakeLobbyOutbox(db, locked_games={"g1"})
    assert relay(outbox, batch_games=10, time_budget_seconds=60, clock=FakeClock()) == 0
    assert len(outbox.relay_calls) == 1


def test_relay_works_page_by_page_in_row_order() -> None:
    db = _db_with_pending("g1", "g2", "g3", "g4", "g5")
    outbox = FakeLobbyOutbox(db)
    assert relay(outbox, batch_games=2, time_budget_seconds=60, clock=FakeClock()) == 5
    assert [games for games, _ in outbox.relay_calls] == [("g1", "g2"), ("g3", "g4"), ("g5",)]
    assert outbox.scan_calls == [(0, 2), (2, 2), (4, 2)]


def test_relay_goes_past_a_page_of_locked_games_to_the_rest_of_the_outbox() -> None:
    db = _db_with_pending("g1", "g2", "g3")
    outbox = FakeLobbyOutbox(db, locked_games={"g1", "g2"})
    assert relay(outbox, batch_games=2, time_budget_seconds=60, clock=FakeClock()) == 1
    assert [f["game_id"] for f in outbox.stream] == ["g3"]
    assert _backlog_gauge() == 2


def test_relay_stops_when_its_time_budget_is_spent() -> None:
    db = _db_with_pending("g1", "g2", "g3", "g4", "g5")
    outbox = FakeLobbyOutbox(db)
    appended = relay(outbox, batch_games=1, time_budget_seconds=2.5, clock=FakeClock(tick=1.0))
    assert appended == 2
    assert outbox.backlog() == 3


def test_relay_reports_backlog_and_published_count() -> None:
    db = _db_with_pending("g1", "g2", "g3")
    outbox = FakeLobbyOutbox(db, locked_games={"g3"})
    before = _published()
    relay(outbox, batch_games=10, time_budget_seconds=5, clock=FakeClock())
    assert _published() - before == 2
    assert _backlog_gauge() == 1


def test_relay_with_an_empty_outbox_reports_zero_backlog() -> None:
    outbox = FakeLobbyOutbox(FakeDatabase())
    assert relay(outbox, batch_games=10, time_budget_seconds=5, clock=FakeClock()) == 0
    assert _backlog_gauge() == 0
    assert outbox.relay_calls == []


def test_relay_error_propagates_and_keeps_the_snapshots_pending() -> None:
    db = _db_with_pending("g1")
    outbox = FakeLobbyOutbox(db, fail_times=1)
    with pytest.raises(BackendUnavailable):
        relay(outbox, batch_games=10, time_budget_seconds=5, clock=FakeClock())
    assert outbox.backlog() == 1
    assert outbox.stream == []


def test_committed_health_changes_reach_the_lobby_stream_in_commit_order() -> None:
    db = FakeDatabase()
    db.add_record("g1", "running", "healthy", 9)
    handoffs = [
        Handoff("1-0", {"game_id": "g1", "event_type": "container_oom", "occurred_at_ms": "5"}, None),
        Handoff("2-0", {"game_id": "g1", "event_type": "probe_recovered", "occurred_at_ms": "6"}, "1-0"),
    ]
    apply_entries(FakeHealthConsumerUnitOfWork(db), handoffs, now_ms=1700000000000)
    outbox = FakeLobbyOutbox(db)
    relay(outbox, batch_games=10, time_budget_seconds=5, clock=FakeClock())
    assert [(f["runtime_status"], f["engine_health_summary"], f["current_turn"]) for f in outbox.stream] == [
        ("engine_unreachable", "oom", "9"),
        ("running", "healthy", "9"),
    ]


def _committed(db: FakeDatabase, *handoffs: Handoff) -> list[OutboxEntry]:
    return apply_entries(FakeHealthConsumerUnitOfWork(db), list(handoffs), now_ms=1700000000000).lobby_entries


def _entry(entry_id: str, event_type: str, prev: str | None = None, game: str = "g1") -> Handoff:
    return Handoff(entry_id, {"game_id": game, "event_type": event_type, "occurred_at_ms": "5"}, prev)


def test_snapshots_next_in_their_game_go_out_right_after_commit_without_the_locked_relay() -> None:
    db = FakeDatabase()
    db.add_record("g1", "running", "healthy", 9)
    outbox = FakeLobbyOutbox(db)
    first = _committed(db, _entry("1-0", "container_oom"))
    second = _committed(db, _entry("2-0", "probe_recovered", prev="1-0"))
    assert after_commit(outbox, first) == 1
    assert after_commit(outbox, second) == 1
    assert [f["runtime_status"] for f in outbox.stream] == ["engine_unreachable", "running"]
    assert outbox.relay_calls == []
    assert outbox.backlog() == 0
    assert len(db.outbox) == 2, "published rows stay until the periodic relay clears them"


def test_a_snapshot_committed_after_one_not_yet_out_is_relayed_under_the_lock_in_commit_order() -> None:
    db = FakeDatabase()
    db.add_record("g1", "running", "healthy", 9)
    outbox = FakeLobbyOutbox(db)
    first = _committed(db, _entry("1-0", "container_oom"))
    second = _committed(db, _entry("2-0", "probe_recovered", prev="1-0"))
    assert after_commit(outbox, second) == 2  # overtook the first task: relays both, in order
    assert outbox.relay_calls == [(("g1",), True)]
    assert after_commit(outbox, first) == 0  # the late first task appends nothing twice
    assert [f["runtime_status"] for f in outbox.stream] == ["engine_unreachable", "running"]
    assert db.outbox == []


def test_a_failed_append_after_commit_is_left_to_the_periodic_relay() -> None:
    db = FakeDatabase()
    db.add_record("g1", "running", "healthy", 9)
    outbox = FakeLobbyOutbox(db, fail_times=1)
    committed = _committed(db, _entry("1-0", "container_oom"))
    assert after_commit(outbox, committed) == 0
    assert outbox.backlog() == 1
    assert relay(outbox, batch_games=10, time_budget_seconds=5, clock=FakeClock()) == 1
    assert [f["runtime_status"] for f in outbox.stream] == ["engine_unreachable"]


def test_the_periodic_relay_clears_rows_already_published_without_appending_them_again() -> None:
    db = FakeDatabase()
    db.add_record("g1", "running", "healthy", 9)
    outbox = FakeLobbyOutbox(db)
    after_commit(outbox, _committed(db, _entry("1-0", "container_oom")))
    assert relay(outbox, batch_games=10, time_budget_seconds=5, clock=FakeClock()) == 0
    assert db.outbox == []
    assert len(outbox.stream) == 1


def test_the_sweep_clears_published_rows_of_more_games_than_one_batch() -> None:
    db = FakeDatabase()
    outbox = FakeLobbyOutbox(db)
    for n in range(5):
        db.add_record(f"g{n}", "running", "healthy", 9)
        after_commit(outbox, _committed(db, _entry(f"{n + 1}-0", "container_oom", game=f"g{n}")))
    assert len(db.outbox) == 5
    assert relay(outbox, batch_games=2, time_budget_seconds=60, clock=FakeClock()) == 0
    assert db.outbox == []
    assert len(outbox.stream) == 5
