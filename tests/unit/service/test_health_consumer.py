"""``apply_entries`` over the in-memory unit of work: one transaction per call, in stream order."""

from __future__ import annotations

import pytest

from galaxy_tasks.domain.errors import BackendUnavailable
from galaxy_tasks.domain.gamemaster.consumer import Outcome
from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord
from galaxy_tasks.domain.gamemaster.statuses import ENGINE_LOST
from galaxy_tasks.ports import Handoff
from galaxy_tasks.service.health_consumer import BatchResult, EntryResult, apply_entries
from tests.fakes import FakeDatabase, FakeHealthConsumerUnitOfWork

NOW_MS = 1700000005000


def _h(entry_id: str, game_id: str | None, event_type: str, prev: str | None = None) -> Handoff:
    fields = {"container_id": "c", "event_type": event_type, "occurred_at_ms": "1700000000000", "details": "{}"}
    if game_id is not None:
        fields["game_id"] = game_id
    return Handoff(entry_id, fields, prev)


def _db(**statuses: str) -> FakeDatabase:
    db = FakeDatabase()
    for game_id, status in statuses.items():
        db.add_record(game_id, status, "healthy", 4)
    return db


def _apply(db: FakeDatabase, *handoffs: Handoff, ignore: tuple[str, ...] = ()) -> BatchResult:
    return apply_entries(FakeHealthConsumerUnitOfWork(db), handoffs, now_ms=NOW_MS, ignore_order_for=ignore)


def _outcomes(result: BatchResult) -> list[tuple[str, Outcome]]:
    return [(r.entry_id, r.outcome) for r in result.results]


def test_single_entry_moves_status_cursor_and_outbox_in_one_commit() -> None:
    db = _db(g1="running")
    uow = FakeHealthConsumerUnitOfWork(db)
    result = apply_entries(uow, [_h("5-0", "g1", "container_exited")], now_ms=NOW_MS)

    assert result.results == [EntryResult("5-0", "g1", Outcome.APPLIED, ENGINE_LOST, published=True)]
    assert db.records["g1"] == GameRecord("g1", "engine_unreachable", "exited", 4)
    assert db.cursors["g1"] == ConsumerCursor("g1", "5-0", "exited")
    assert [(row.stream_entry_id, row.snapshot.to_fields()["runtime_status"]) for row in db.outbox] == [
        ("5-0", "engine_unreachable")
    ]
    assert uow.commits == 1
    assert db.updated_at_ms["g1"] == NOW_MS


def test_chunk_with_several_games_applies_each_game_in_stream_order() -> None:
    db = _db(g1="running", g2="engine_unreachable")
    result = _apply(
        db,
        _h("1-0", "g1", "probe_failed"),
        _h("2-0", "g2", "probe_recovered"),
        _h("3-0", "g1", "container_oom", prev="1-0"),
        _h("4-0", "g2", "container_exited", prev="2-0"),
        _h("10-0", "g1", "probe_recovered", prev="3-0"),
    )
    assert all(r.outcome is Outcome.APPLIED for r in result.results)
    assert db.records["g1"] == GameRecord("g1", "running", "healthy", 4)
    assert db.records["g2"] == GameRecord("g2", "engine_unreachable", "exited", 4)
    assert db.cursors["g1"].last_entry_id == "10-0"
    assert db.cursors["g2"].last_entry_id == "4-0"
    g1 = [(r.stream_entry_id, r.snapshot.runtime_status, r.snapshot.engine_health_summary) for r in db.outbox_of("g1")]
    assert g1 == [
        ("1-0", "running", "probe_failed"),
        ("3-0", "engine_unreachable", "oom"),
        ("10-0", "running", "healthy"),
    ]
    g2 = [(r.stream_entry_id, r.snapshot.runtime_status) for r in db.outbox_of("g2")]
    assert g2 == [("2-0", "running"), ("4-0", "engine_unreachable")]
    assert db.commits == 1


def test_results_come_back_in_handoff_order() -> None:
    db = _db(g1="running", g2="running")
    result = _apply(db, _h("1-0", "g2", "probe_failed"), _h("2-0", None, "probe_failed"), _h("3-0", "g1", "oom?"))
    assert _outcomes(result) == [
        ("1-0", Outcome.APPLIED),
        ("2-0", Outcome.SKIPPED_MALFORMED),
        ("3-0", Outcome.SKIPPED_UNKNOWN_TYPE),
    ]


def test_missing_predecessor_makes_the_entry_and_later_entries_of_its_game_wait() -> None:
    db = _db(g1="running", g2="running")
    result = _apply(
        db,
        _h("3-0", "g1", "container_exited", prev="1-0"),
        _h("4-0", "g2", "container_oom"),
        _h("5-0", "g1", "probe_recovered", prev="3-0"),
        _h("6-0", "g2", "probe_failed", prev="4-0"),
    )
    assert _outcomes(result) == [
        ("3-0", Outcome.WAITING),
        ("4-0", Outcome.APPLIED),
        ("5-0", Outcome.WAITING),
        ("6-0", Outcome.APPLIED),
    ]
    assert result.waiting == ["3-0", "5-0"]
    assert db.records["g1"] == GameRecord("g1", "running", "healthy", 4)
    assert db.outbox_of("g1") == []
    assert db.cursors["g2"].last_entry_id == "6-0"
    assert db.records["g2"] == GameRecord("g2", "engine_unreachable", "probe_failed", 4)


def test_waiting_entries_apply_once_their_predecessor_is_applied() -> None:
    db = _db(g1="running")
    waiting = [_h("3-0", "g1", "container_exited", prev="1-0"), _h("5-0", "g1", "probe_recovered", prev="3-0")]
    assert _apply(db, *waiting).waiting == ["3-0", "5-0"]
    _apply(db, _h("1-0", "g1", "probe_failed"))
    result = _apply(db, *waiting)
    assert _outcomes(result) == [("3-0", Outcome.APPLIED), ("5-0", Outcome.APPLIED)]
    assert db.records["g1"] == GameRecord("g1", "running", "healthy", 4)
    assert [r.snapshot.engine_health_summary for r in db.outbox_of("g1")] == ["probe_failed", "exited", "healthy"]


def test_duplicate_delivery_changes_nothing_and_publishes_nothing() -> None:
    db = _db(g1="running")
    batch = [_h("1-0", "g1", "container_oom"), _h("2-0", "g1", "probe_failed", prev="1-0")]
    _apply(db, *batch)
    before = db.state()
    uow = FakeHealthConsumerUnitOfWork(db)
    result = apply_entries(uow, batch, now_ms=NOW_MS + 1)
    assert _outcomes(result) == [("1-0", Outcome.DUPLICATE), ("2-0", Outcome.DUPLICATE)]
    assert not any(r.published for r in result.results)
    assert db.state() == before
    assert uow.writes == []


def test_duplicate_of_an_older_entry_after_later_ones_changes_nothing() -> None:
    db = _db(g1="running")
    _apply(db, _h("1-0", "g1", "container_oom"))
    _apply(db, _h("2-0", "g1", "probe_recovered", prev="1-0"))
    before = db.state()
    assert _outcomes(_apply(db, _h("1-0", "g1", "container_oom"))) == [("1-0", Outcome.DUPLICATE)]
    assert db.state() == before


def test_nothing_is_written_when_every_entry_waits() -> None:
    db = _db(g1="running", g2="running")
    before = db.state()
    uow = FakeHealthConsumerUnitOfWork(db)
    result = apply_entries(
        uow, [_h("3-0", "g1", "container_oom", prev="2-0"), _h("4-0", "g2", "probe_failed", prev="1-0")], now_ms=NOW_MS
    )
    assert result.waiting == ["3-0", "4-0"]
    assert uow.writes == []
    assert uow.rollbacks == 1
    assert db.state() == before
    assert db.cursors == {}


def test_entries_without_game_id_are_skipped_without_touching_the_unit_of_work() -> None:
    db = _db(g1="running")
    uow = FakeHealthConsumerUnitOfWork(db)
    result = apply_entries(uow, [_h("1-0", None, "container_oom"), _h("2-0", "  ", "probe_failed")], now_ms=NOW_MS)
    assert _outcomes(result) == [("1-0", Outcome.SKIPPED_MALFORMED), ("2-0", Outcome.SKIPPED_MALFORMED)]
    assert [r.game_id for r in result.results] == [None, None]
    assert uow.entered == 0
    assert uow.calls == []


def test_unknown_game_is_skipped_but_its_cursor_is_committed() -> None:
    db = _db(g1="running")
    result = _apply(db, _h("1-0", "g404", "container_oom"))
    assert _outcomes(result) == [("1-0", Outcome.SKIPPED_UNKNOWN_GAME)]
    assert "g404" not in db.records
    assert db.cursors["g404"] == ConsumerCursor("g404", "1-0", None)
    assert db.outbox == []


def test_malformed_entry_with_a_game_id_advances_the_cursor_so_the_next_entry_is_not_blocked() -> None:
    db = _db(g1="running")
    bad = Handoff("1-0", {"game_id": "g1", "event_type": "container_oom", "occurred_at_ms": "soon"}, None)
    result = _apply(db, bad, _h("2-0", "g1", "container_oom", prev="1-0"))
    assert _outcomes(result) == [("1-0", Outcome.SKIPPED_MALFORMED), ("2-0", Outcome.APPLIED)]
    assert db.records["g1"].status == "engine_unreachable"


def test_status_held_by_another_flow_is_kept_and_the_summary_still_published() -> None:
    db = _db(g1="generation_in_progress")
    result = _apply(db, _h("1-0", "g1", "container_oom"))
    assert result.results[0].transition is None
    assert result.results[0].published
    assert db.records["g1"] == GameRecord("g1", "generation_in_progress", "oom", 4)
    assert db.outbox[0].snapshot.runtime_status == "generation_in_progress"


def test_debounce_survives_across_transactions() -> None:
    db = _db(g1="running")
    _apply(db, _h("1-0", "g1", "probe_failed"))
    second = _apply(db, _h("2-0", "g1", "probe_failed", prev="1-0"))
    third = _apply(db, _h("3-0", "g1", "inspect_unhealthy", prev="2-0"))
    assert [second.results[0].published, third.results[0].published] == [False, True]
    assert [r.stream_entry_id for r in db.outbox_of("g1")] == ["1-0", "3-0"]
    assert db.cursors["g1"] == ConsumerCursor("g1", "3-0", "inspect_unhealthy")


def test_ignore_order_for_applies_a_waiting_entry() -> None:
    db = _db(g1="running")
    result = _apply(db, _h("3-0", "g1", "container_oom", prev="2-0"), ignore=("3-0",))
    assert _outcomes(result) == [("3-0", Outcome.APPLIED)]
    assert db.cursors["g1"].last_entry_id == "3-0"


def test_ignore_order_for_one_entry_does_not_release_the_next_one_early() -> None:
    db = _db(g1="running")
    result = _apply(
        db,
        _h("3-0", "g1", "container_oom", prev="2-0"),
        _h("5-0", "g1", "probe_failed", prev="4-0"),
        ignore=("3-0",),
    )
    assert _outcomes(result) == [("3-0", Outcome.APPLIED), ("5-0", Outcome.WAITING)]


def test_failed_commit_propagates_and_leaves_the_database_untouched() -> None:
    db = _db(g1="running")
    before = db.state()
    uow = FakeHealthConsumerUnitOfWork(db, fail_on_commit=BackendUnavailable("postgresql", "gone"))
    with pytest.raises(BackendUnavailable):
        apply_entries(uow, [_h("1-0", "g1", "container_oom")], now_ms=NOW_MS)
    assert db.state() == before


def test_locks_are_requested_in_game_id_order() -> None:
    db = _db(b="running", a="running", c="running")
    uow = FakeHealthConsumerUnitOfWork(db)
    apply_entries(uow, [_h("1-0", "c", "probe_failed"), _h("2-0", "a", "probe_failed"), _h("3-0", "b", "x")], now_ms=1)
    assert uow.lock_requests == [("cursors", ("a", "b", "c")), ("records", ("a", "b", "c"))]


def test_batch_result_lists_waiting_entries_and_published_games() -> None:
    db = _db(g1="running", g2="running", g3="running")
    result = _apply(
        db,
        _h("1-0", "g2", "probe_failed"),
        _h("2-0", "g1", "container_oom"),
        _h("3-0", "g3", "probe_failed", prev="0-1"),
        _h("4-0", "g2", "probe_failed", prev="1-0"),
    )
    assert result.waiting == ["3-0"]
    assert result.published_games == ["g1", "g2"]


def test_entry_result_as_dict_is_json_friendly() -> None:
    db = _db(g1="running")
    result = _apply(db, _h("1-0", "g1", "container_exited"), _h("2-0", None, "probe_failed"))
    assert [r.as_dict() for r in result.results] == [
        {
            "entry_id": "1-0",
            "game_id": "g1",
            "outcome": "applied",
            "transition": "running->engine_unreachable",
            "published": True,
            "detail": "",
        },
        {
            "entry_id": "2-0",
            "game_id": None,
            "outcome": "malformed",
            "transition": None,
            "published": False,
            "detail": "missing game_id",
        },
    ]
