"""``apply_entries`` over the in-memory unit of work: one transaction per call, in stream order.

An entry whose predecessor is not applied yet is parked; the transaction that
applies the predecessor applies the parked successors too.
"""

from __future__ import annotations

import pytest

from galaxy_tasks.domain.errors import BackendUnavailable, PostgresUnavailable
from galaxy_tasks.domain.gamemaster.consumer import Outcome
from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord
from galaxy_tasks.domain.gamemaster.statuses import ENGINE_LOST, ENGINE_RECOVERED
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.service.health_consumer import BatchResult, EntryResult, apply_entries
from galaxy_tasks.testing.gamemaster import FakeDatabase, FakeHealthConsumerUnitOfWork

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


def _apply(db: FakeDatabase, *handoffs: Handoff) -> BatchResult:
    return apply_entries(FakeHealthConsumerUnitOfWork(db), handoffs, now_ms=NOW_MS)


def _outcomes(result: BatchResult) -> list[tuple[str, Outcome]]:
    return [(r.entry_id, r.outcome) for r in result.results]


def _released(result: BatchResult) -> list[tuple[str, Outcome]]:
    return [(r.entry_id, r.outcome) for r in result.released]


def _parking(db: FakeDatabase) -> dict[tuple[str, str], str | None]:
    """The committed parking: ``(game_id, entry_id)`` -> the stored predecessor id."""
    return {key: row.prev_entry_id for key, row in db.parked.items()}


def _summaries(db: FakeDatabase, game_id: str) -> list[tuple[str, str, str]]:
    return [
        (row.stream_entry_id, row.snapshot.runtime_status, row.snapshot.engine_health_summary)
        for row in db.outbox_of(game_id)
    ]


def test_single_entry_moves_status_cursor_and_outbox_in_one_commit() -> None:
    db = _db(g1="running")
    uow = FakeHealthConsumerUnitOfWork(db)
    result = apply_entries(uow, [_h("5-0", "g1", "container_exited")], now_ms=NOW_MS)

    assert result.results == [EntryResult("5-0", "g1", Outcome.APPLIED, ENGINE_LOST, published=True)]
    assert db.records["g1"] == GameRecord("g1", "engine_unreachable", "exited", 4)
    assert db.cursors["g1"] == ConsumerCursor("g1", "5-0", "exited", lobby_seq=1)
    assert [(row.stream_entry_id, row.snapshot.to_fields()["runtime_status"]) for row in db.outbox] == [
        ("5-0", "engine_unreachable")
    ]
    assert uow.commits == 1
    assert db.updated_at_ms["g1"] == NOW_MS
    assert db.parked == {}


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


def test_a_chunk_handed_in_out_of_stream_order_is_applied_in_stream_order() -> None:
    db = _db(g1="running")
    result = _apply(
        db,
        _h("10-0", "g1", "probe_recovered", prev="9-0"),
        _h("9-0", "g1", "container_oom", prev="2-0"),
        _h("2-0", "g1", "probe_failed"),
    )
    assert _outcomes(result) == [("10-0", Outcome.APPLIED), ("9-0", Outcome.APPLIED), ("2-0", Outcome.APPLIED)]
    assert _summaries(db, "g1") == [
        ("2-0", "running", "probe_failed"),
        ("9-0", "engine_unreachable", "oom"),
        ("10-0", "running", "healthy"),
    ]
    assert db.cursors["g1"].last_entry_id == "10-0"
    assert db.parked == {}


def test_an_entry_listed_twice_in_a_chunk_is_applied_and_reported_once() -> None:
    db = _db(g1="running")
    first = _h("1-0", "g1", "container_oom")
    result = _apply(db, first, _h("2-0", "g1", "probe_failed", prev="1-0"), first)
    assert _outcomes(result) == [("1-0", Outcome.APPLIED), ("2-0", Outcome.APPLIED)]
    assert [row.stream_entry_id for row in db.outbox] == ["1-0", "2-0"]


def test_missing_predecessor_parks_the_entry_and_the_later_entries_of_its_game() -> None:
    db = _db(g1="running", g2="running")
    result = _apply(
        db,
        _h("3-0", "g1", "container_exited", prev="1-0"),
        _h("4-0", "g2", "container_oom"),
        _h("5-0", "g1", "probe_recovered", prev="3-0"),
        _h("6-0", "g2", "probe_failed", prev="4-0"),
    )
    assert _outcomes(result) == [
        ("3-0", Outcome.PARKED),
        ("4-0", Outcome.APPLIED),
        ("5-0", Outcome.PARKED),
        ("6-0", Outcome.APPLIED),
    ]
    assert result.parked == ["3-0", "5-0"]
    assert result.released == []
    assert _parking(db) == {("g1", "3-0"): "1-0", ("g1", "5-0"): "3-0"}
    assert db.records["g1"] == GameRecord("g1", "running", "healthy", 4)
    assert db.cursors["g1"] == ConsumerCursor("g1")
    assert db.outbox_of("g1") == []
    assert db.cursors["g2"].last_entry_id == "6-0"
    assert db.records["g2"] == GameRecord("g2", "engine_unreachable", "probe_failed", 4)


def test_parking_entries_commits_the_parking_and_nothing_else() -> None:
    db = _db(g1="running", g2="running")
    before = db.state()
    uow = FakeHealthConsumerUnitOfWork(db)
    result = apply_entries(
        uow, [_h("3-0", "g1", "container_oom", prev="2-0"), _h("4-0", "g2", "probe_failed", prev="1-0")], now_ms=NOW_MS
    )
    assert result.parked == ["3-0", "4-0"]
    assert uow.commits == 1
    assert _parking(db) == {("g1", "3-0"): "2-0", ("g2", "4-0"): "1-0"}
    assert db.records == before.records
    assert db.updated_at_ms == {}
    assert db.outbox == []
    assert db.cursors == {"g1": ConsumerCursor("g1"), "g2": ConsumerCursor("g2")}


def test_parked_entries_apply_in_the_transaction_that_applies_their_predecessor() -> None:
    db = _db(g1="running")
    before = db.state()
    assert _apply(db, _h("5-0", "g1", "probe_recovered", prev="3-0")).parked == ["5-0"]
    assert _apply(db, _h("3-0", "g1", "container_exited", prev="1-0")).parked == ["3-0"]
    assert _parking(db) == {("g1", "3-0"): "1-0", ("g1", "5-0"): "3-0"}
    assert (db.records, db.outbox, db.updated_at_ms) == (before.records, [], {})
    assert db.cursors == {"g1": ConsumerCursor("g1")}

    uow = FakeHealthConsumerUnitOfWork(db)
    result = apply_entries(uow, [_h("1-0", "g1", "probe_failed")], now_ms=NOW_MS)

    assert _outcomes(result) == [("1-0", Outcome.APPLIED)]
    assert _released(result) == [("3-0", Outcome.APPLIED), ("5-0", Outcome.APPLIED)]
    assert [r.transition for r in result.released] == [ENGINE_LOST, ENGINE_RECOVERED]
    assert result.parked == []
    assert result.published_games == ["g1"]
    assert uow.commits == 1
    assert db.parked == {}
    assert db.records["g1"] == GameRecord("g1", "running", "healthy", 4)
    assert db.cursors["g1"] == ConsumerCursor("g1", "5-0", "healthy", lobby_seq=3)
    assert _summaries(db, "g1") == [
        ("1-0", "running", "probe_failed"),
        ("3-0", "engine_unreachable", "exited"),
        ("5-0", "running", "healthy"),
    ]


def test_parked_entries_are_released_in_stream_order_whatever_order_they_were_parked_in() -> None:
    db = _db(g1="running")
    _apply(db, _h("10-0", "g1", "probe_recovered", prev="9-0"))
    _apply(db, _h("9-0", "g1", "container_oom", prev="2-0"))
    result = _apply(db, _h("2-0", "g1", "probe_failed"))
    assert _released(result) == [("9-0", Outcome.APPLIED), ("10-0", Outcome.APPLIED)]
    assert _summaries(db, "g1") == [
        ("2-0", "running", "probe_failed"),
        ("9-0", "engine_unreachable", "oom"),
        ("10-0", "running", "healthy"),
    ]
    assert db.parked == {}


def test_an_entry_redelivered_while_parked_is_parked_once_and_keeps_its_parking_time() -> None:
    db = _db(g1="running")
    parked = _h("3-0", "g1", "container_oom", prev="1-0")
    db.now_ms = 100
    _apply(db, parked)
    db.now_ms = 200
    again = _apply(db, parked)
    assert _outcomes(again) == [("3-0", Outcome.PARKED)]
    assert _parking(db) == {("g1", "3-0"): "1-0"}
    assert db.parked["g1", "3-0"].parked_at_ms == 100

    result = _apply(db, _h("1-0", "g1", "probe_failed"))
    assert _released(result) == [("3-0", Outcome.APPLIED)]
    assert [row.stream_entry_id for row in db.outbox] == ["1-0", "3-0"]
    assert db.parked == {}


def test_a_redelivered_parked_entry_commits_nothing() -> None:
    db = _db(g1="running")
    parked = _h("3-0", "g1", "container_oom", prev="1-0")
    _apply(db, parked)
    before = db.state()
    uow = FakeHealthConsumerUnitOfWork(db)
    result = apply_entries(uow, [parked], now_ms=NOW_MS + 1)
    assert result.parked == ["3-0"]
    assert uow.committed_writes == []
    assert (uow.commits, uow.rollbacks) == (0, 1)
    assert db.state() == before


def test_a_handed_in_copy_of_a_parked_entry_replaces_its_stored_predecessor_id() -> None:
    db = _db(g1="running")
    _apply(db, _h("5-0", "g1", "container_oom", prev="3-0"))
    rechained = _apply(db, _h("5-0", "g1", "container_oom", prev="1-0"))
    assert _outcomes(rechained) == [("5-0", Outcome.PARKED)]
    assert _parking(db) == {("g1", "5-0"): "1-0"}

    result = _apply(db, _h("1-0", "g1", "probe_failed"))
    assert _released(result) == [("5-0", Outcome.APPLIED)]
    assert db.cursors["g1"].last_entry_id == "5-0"
    assert db.records["g1"] == GameRecord("g1", "engine_unreachable", "oom", 4)


def test_an_entry_never_overtakes_an_earlier_parked_entry_of_its_game() -> None:
    db = _db(g1="running")
    _apply(db, _h("1-0", "g1", "probe_failed"))
    _apply(db, _h("3-0", "g1", "container_oom", prev="2-0"))
    overtaking = _apply(db, _h("5-0", "g1", "probe_recovered", prev="1-0"))
    assert _outcomes(overtaking) == [("5-0", Outcome.PARKED)]
    assert db.cursors["g1"].last_entry_id == "1-0"
    assert _parking(db) == {("g1", "3-0"): "2-0", ("g1", "5-0"): "1-0"}

    result = _apply(db, _h("2-0", "g1", "inspect_unhealthy", prev="1-0"))
    assert _released(result) == [("3-0", Outcome.APPLIED), ("5-0", Outcome.APPLIED)]
    assert [row.stream_entry_id for row in db.outbox_of("g1")] == ["1-0", "2-0", "3-0", "5-0"]
    assert db.records["g1"] == GameRecord("g1", "running", "healthy", 4)


def test_a_duplicate_of_an_applied_entry_is_a_duplicate_while_later_entries_of_its_game_are_parked() -> None:
    db = _db(g1="running")
    _apply(db, _h("1-0", "g1", "container_oom"))
    _apply(db, _h("5-0", "g1", "probe_recovered", prev="3-0"))
    before = db.state()
    uow = FakeHealthConsumerUnitOfWork(db)
    result = apply_entries(uow, [_h("1-0", "g1", "container_oom")], now_ms=NOW_MS + 1)
    assert _outcomes(result) == [("1-0", Outcome.DUPLICATE)]
    assert result.released == []
    assert result.published_games == []
    assert uow.committed_writes == []
    assert db.state() == before
    assert _parking(db) == {("g1", "5-0"): "3-0"}


def test_a_chunk_with_a_predecessor_and_its_parked_successor_applies_both_and_reports_each_once() -> None:
    db = _db(g1="running")
    _apply(db, _h("3-0", "g1", "container_oom", prev="1-0"))
    uow = FakeHealthConsumerUnitOfWork(db)
    result = apply_entries(
        uow, [_h("3-0", "g1", "container_oom", prev="1-0"), _h("1-0", "g1", "probe_failed")], now_ms=NOW_MS
    )
    assert _outcomes(result) == [("3-0", Outcome.APPLIED), ("1-0", Outcome.APPLIED)]
    assert result.released == []
    assert uow.commits == 1
    assert db.parked == {}
    assert db.cursors["g1"].last_entry_id == "3-0"
    assert _summaries(db, "g1") == [("1-0", "running", "probe_failed"), ("3-0", "engine_unreachable", "oom")]


def test_parked_entries_of_one_game_do_not_block_other_games() -> None:
    db = _db(g1="running", g2="running")
    _apply(db, _h("3-0", "g1", "container_oom", prev="1-0"))
    result = _apply(
        db,
        _h("2-0", "g2", "container_oom"),
        _h("4-0", "g1", "probe_failed", prev="3-0"),
        _h("5-0", "g2", "probe_recovered", prev="2-0"),
    )
    assert _outcomes(result) == [("2-0", Outcome.APPLIED), ("4-0", Outcome.PARKED), ("5-0", Outcome.APPLIED)]
    assert result.released == []
    assert db.records["g2"] == GameRecord("g2", "running", "healthy", 4)
    assert db.cursors["g2"].last_entry_id == "5-0"
    assert _parking(db) == {("g1", "3-0"): "1-0", ("g1", "4-0"): "3-0"}
    assert db.records["g1"] == GameRecord("g1", "running", "healthy", 4)


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
    assert db.cursors["g1"] == ConsumerCursor("g1", "3-0", "inspect_unhealthy", lobby_seq=2)


def test_failed_commit_propagates_and_leaves_the_database_untouched() -> None:
    db = _db(g1="running")
    before = db.state()
    uow = FakeHealthConsumerUnitOfWork(db, fail_on_commit=PostgresUnavailable("gone"))
    with pytest.raises(BackendUnavailable):
        apply_entries(uow, [_h("1-0", "g1", "container_oom")], now_ms=NOW_MS)
    assert db.state() == before


def test_locks_are_requested_in_game_id_order() -> None:
    db = _db(b="running", a="running", c="running")
    uow = FakeHealthConsumerUnitOfWork(db)
    apply_entries(uow, [_h("1-0", "c", "probe_failed"), _h("2-0", "a", "probe_failed"), _h("3-0", "b", "x")], now_ms=1)
    assert uow.lock_requests == [("a", "b", "c")]


def test_batch_result_lists_parked_entries_and_published_games() -> None:
    db = _db(g1="running", g2="running", g3="running")
    result = _apply(
        db,
        _h("1-0", "g2", "probe_failed"),
        _h("2-0", "g1", "container_oom"),
        _h("3-0", "g3", "probe_failed", prev="0-1"),
        _h("4-0", "g2", "probe_failed", prev="1-0"),
    )
    assert result.parked == ["3-0"]
    assert result.published_games == ["g1", "g2"]


def test_entry_result_as_dict_is_json_friendly() -> None:
    db = _db(g1="running")
    result = _apply(
        db, _h("1-0", "g1", "container_exited"), _h("2-0", None, "probe_failed"), _h("4-0", "g1", "x", prev="3-0")
    )
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
        {
            "entry_id": "4-0",
            "game_id": "g1",
            "outcome": "parked",
            "transition": None,
            "published": False,
            "detail": "waiting for 3-0",
        },
    ]
