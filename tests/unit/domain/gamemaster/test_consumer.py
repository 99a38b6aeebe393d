"""One entry folded into one game: order and exactly-once checks, then seed 001's ``HandleMessage``."""

from __future__ import annotations

import pytest

from galaxy_tasks.domain.gamemaster.consumer import Outcome, Readiness, Step, fold_entry, readiness
from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord, LobbySnapshot
from galaxy_tasks.domain.gamemaster.statuses import ENGINE_LOST, ENGINE_RECOVERED

NOW_MS = 1700000000999


def _fields(event_type: str, game_id: str = "g1", occurred_at_ms: str = "1700000000000") -> dict[str, str]:
    return {
        "game_id": game_id,
        "container_id": "c1",
        "event_type": event_type,
        "occurred_at_ms": occurred_at_ms,
        "details": "{}",
    }


def _fold(
    event_type: str,
    *,
    status: str | None = "running",
    engine_health: str = "",
    current_turn: int = 3,
    entry_id: str = "5-0",
    prev: str | None = None,
    cursor_entry: str | None = None,
    last_published: str | None = None,
    fields: dict[str, str] | None = None,
) -> Step:
    record = None if status is None else GameRecord("g1", status, engine_health, current_turn)
    return fold_entry(
        entry_id=entry_id,
        fields=_fields(event_type) if fields is None else fields,
        prev_entry_id=prev,
        cursor=ConsumerCursor("g1", cursor_entry, last_published),
        record=record,
        now_ms=NOW_MS,
    )


# --------------------------------------------------------------------------- readiness


def test_readiness_first_entry_of_a_new_game_is_ready() -> None:
    assert readiness("5-0", None, None) is Readiness.READY


def test_readiness_entry_after_its_applied_predecessor_is_ready() -> None:
    assert readiness("5-0", "3-0", "3-0") is Readiness.READY


@pytest.mark.parametrize("cursor", ["5-0", "6-0", "10-0"])
def test_readiness_entry_at_or_before_the_cursor_is_a_duplicate(cursor: str) -> None:
    assert readiness("5-0", "3-0", cursor) is Readiness.DUPLICATE


def test_readiness_compares_ids_as_numbers() -> None:
    assert readiness("9-0", "8-0", "10-0") is Readiness.DUPLICATE
    assert readiness("10-0", "9-0", "9-0") is Readiness.READY


def test_readiness_entry_whose_predecessor_is_not_applied_waits() -> None:
    assert readiness("5-0", "4-0", "3-0") is Readiness.WAIT


def test_readiness_entry_with_a_predecessor_on_a_game_with_no_cursor_waits() -> None:
    assert readiness("5-0", "4-0", None) is Readiness.WAIT


def test_readiness_entry_without_known_predecessor_is_ready_after_the_cursor() -> None:
    assert readiness("5-0", None, "3-0") is Readiness.READY


def test_readiness_duplicate_wins_over_wait() -> None:
    assert readiness("5-0", "4-0", "5-0") is Readiness.DUPLICATE


# --------------------------------------------------------------------------- CAS transitions


@pytest.mark.parametrize(("event_type", "summary"), [("container_exited", "exited"), ("container_oom", "oom")])
def test_terminal_event_on_running_game_makes_it_engine_unreachable(event_type: str, summary: str) -> None:
    step = _fold(event_type, status="running")
    assert step.outcome is Outcome.APPLIED
    assert step.transition == ENGINE_LOST
    assert step.record == GameRecord("g1", "engine_unreachable", summary, 3)


def test_container_disappeared_on_running_game_makes_it_engine_unreachable() -> None:
    step = _fold("container_disappeared", status="running")
    assert step.transition == ENGINE_LOST
    assert step.record == GameRecord("g1", "engine_unreachable", "disappeared", 3)


def test_probe_recovered_on_unreachable_game_makes_it_running() -> None:
    step = _fold("probe_recovered", status="engine_unreachable", engine_health="exited")
    assert step.transition == ENGINE_RECOVERED
    assert step.record == GameRecord("g1", "running", "healthy", 3)


@pytest.mark.parametrize(
    "status", ["generation_in_progress", "generation_failed", "stopped", "finished", "starting", "engine_unreachable"]
)
def test_terminal_event_never_overwrites_a_status_other_than_running(status: str) -> None:
    step = _fold("container_oom", status=status, engine_health="healthy")
    assert step.outcome is Outcome.APPLIED
    assert step.transition is None
    assert step.record == GameRecord("g1", status, "oom", 3)


@pytest.mark.parametrize("status", ["running", "generation_in_progress", "stopped", "finished"])
def test_probe_recovered_outside_engine_unreachable_only_updates_the_summary(status: str) -> None:
    step = _fold("probe_recovered", status=status, engine_health="probe_failed")
    assert step.transition is None
    assert step.record == GameRecord("g1", status, "healthy", 3)


@pytest.mark.parametrize(
    ("event_type", "summary"),
    [("container_started", "healthy"), ("probe_failed", "probe_failed"), ("inspect_unhealthy", "inspect_unhealthy")],
)
@pytest.mark.parametrize("status", ["running", "engine_unreachable", "generation_in_progress"])
def test_summary_only_events_never_move_the_status(event_type: str, summary: str, status: str) -> None:
    step = _fold(event_type, status=status)
    assert step.transition is None
    assert step.record == GameRecord("g1", status, summary, 3)


def test_generation_in_progress_survives_a_lost_engine_and_publishes_the_new_summary() -> None:
    step = _fold("container_exited", status="generation_in_progress", engine_health="healthy", last_published="healthy")
    assert step.record is not None
    assert step.record.status == "generation_in_progress"
    assert step.snapshot is not None
    assert (step.snapshot.runtime_status, step.snapshot.engine_health_summary) == ("generation_in_progress", "exited")


# --------------------------------------------------------------------------- skips


def test_unknown_game_is_skipped_but_its_cursor_advances() -> None:
    step = _fold("container_oom", status=None, cursor_entry="3-0", prev="3-0", last_published="healthy")
    assert step.outcome is Outcome.SKIPPED_UNKNOWN_GAME
    assert step.record is None
    assert step.snapshot is None
    assert step.cursor == ConsumerCursor("g1", "5-0", "healthy")


@pytest.mark.parametrize(
    "fields",
    [
        {"game_id": "g1", "occurred_at_ms": "1"},
        {"game_id": "g1", "event_type": "container_oom"},
        {"game_id": "g1", "event_type": "container_oom", "occurred_at_ms": "0"},
        {"game_id": "g1", "event_type": "container_oom", "occurred_at_ms": "5.0"},
    ],
)
def test_malformed_entry_with_a_game_id_advances_the_cursor_and_changes_nothing(fields: dict[str, str]) -> None:
    step = _fold("", fields=fields, engine_health="healthy", last_published="healthy")
    assert step.outcome is Outcome.SKIPPED_MALFORMED
    assert step.cursor == ConsumerCursor("g1", "5-0", "healthy")
    assert step.record == GameRecord("g1", "running", "healthy", 3)
    assert step.snapshot is None
    assert step.detail


def test_unknown_event_type_advances_the_cursor_and_changes_nothing() -> None:
    step = _fold("container_paused", engine_health="healthy")
    assert step.outcome is Outcome.SKIPPED_UNKNOWN_TYPE
    assert step.cursor.last_entry_id == "5-0"
    assert step.record == GameRecord("g1", "running", "healthy", 3)
    assert step.snapshot is None
    assert not step.record_changed


def test_malformed_entry_is_reported_as_malformed_even_for_an_unknown_game() -> None:
    step = _fold("", status=None, fields={"game_id": "g1", "event_type": "container_oom"})
    assert step.outcome is Outcome.SKIPPED_MALFORMED


# --------------------------------------------------------------------------- order and exactly-once


def test_duplicate_entry_changes_nothing() -> None:
    step = _fold("container_oom", cursor_entry="5-0", last_published="exited")
    assert step.outcome is Outcome.DUPLICATE
    assert step.cursor == ConsumerCursor("g1", "5-0", "exited")
    assert step.record == GameRecord("g1", "running", "", 3)
    assert step.snapshot is None
    assert not step.record_changed


def test_entry_waiting_for_its_predecessor_changes_nothing() -> None:
    step = _fold("container_oom", prev="4-0", cursor_entry="3-0")
    assert step.outcome is Outcome.PARKED
    assert step.cursor == ConsumerCursor("g1", "3-0", None)
    assert step.record == GameRecord("g1", "running", "", 3)
    assert step.snapshot is None
    assert "4-0" in step.detail


@pytest.mark.parametrize(
    "fields",
    [
        {"game_id": "g1", "event_type": "container_oom", "occurred_at_ms": "soon"},
        {"game_id": "g1", "event_type": "container_paused", "occurred_at_ms": "1"},
    ],
)
def test_a_skippable_entry_still_waits_for_its_predecessor_instead_of_advancing_the_cursor(
    fields: dict[str, str],
) -> None:
    step = _fold("", fields=fields, prev="4-0", cursor_entry="3-0")
    assert step.outcome is Outcome.PARKED
    assert step.cursor == ConsumerCursor("g1", "3-0", None)


def test_an_entry_of_an_unknown_game_still_waits_for_its_predecessor() -> None:
    step = _fold("container_oom", status=None, prev="4-0", cursor_entry="3-0")
    assert step.outcome is Outcome.PARKED
    assert step.cursor.last_entry_id == "3-0"


def test_an_entry_at_or_before_the_cursor_is_a_duplicate_even_when_its_predecessor_is_ahead_of_the_cursor() -> None:
    step = _fold("container_oom", prev="4-0", cursor_entry="7-0")
    assert step.outcome is Outcome.DUPLICATE
    assert step.cursor.last_entry_id == "7-0"


def test_applied_entry_moves_the_cursor_to_itself() -> None:
    step = _fold("probe_failed", prev="3-0", cursor_entry="3-0")
    assert step.cursor.last_entry_id == "5-0"
    assert step.record_changed


# --------------------------------------------------------------------------- debounce and snapshot


def test_first_event_of_a_game_publishes() -> None:
    step = _fold("probe_failed", last_published=None)
    assert step.snapshot is not None
    assert step.cursor.last_published_summary == "probe_failed"


def test_repeated_summary_without_transition_does_not_publish() -> None:
    step = _fold("probe_failed", engine_health="probe_failed", last_published="probe_failed")
    assert step.outcome is Outcome.APPLIED
    assert step.snapshot is None
    assert step.cursor.last_published_summary == "probe_failed"


def test_changed_summary_without_transition_publishes() -> None:
    step = _fold("inspect_unhealthy", engine_health="probe_failed", last_published="probe_failed")
    assert step.transition is None
    assert step.snapshot is not None
    assert step.cursor.last_published_summary == "inspect_unhealthy"


def test_transition_publishes_even_when_the_summary_was_already_published() -> None:
    step = _fold("probe_recovered", status="engine_unreachable", last_published="healthy")
    assert step.transition == ENGINE_RECOVERED
    assert step.snapshot is not None


def test_debounce_compares_with_the_last_published_summary_not_the_row() -> None:
    # The row says "healthy" (written by someone else) but the Lobby last saw "probe_failed".
    step = _fold("probe_failed", engine_health="healthy", last_published="probe_failed")
    assert step.record is not None
    assert step.record.engine_health == "probe_failed"
    assert step.snapshot is None


def test_debounce_publishes_when_the_row_already_holds_the_summary_but_the_lobby_never_saw_it() -> None:
    step = _fold("probe_failed", engine_health="probe_failed", last_published="healthy")
    assert step.snapshot is not None


def test_snapshot_is_built_from_the_row_after_the_write() -> None:
    step = _fold("container_oom", status="running", engine_health="healthy", current_turn=12)
    assert step.snapshot == LobbySnapshot(
        game_id="g1",
        current_turn=12,
        runtime_status="engine_unreachable",
        engine_health_summary="oom",
        occurred_at_ms=NOW_MS,
    )


def test_snapshot_time_is_the_processing_time() -> None:
    step = _fold("probe_failed", fields=_fields("probe_failed", occurred_at_ms="5"))
    assert step.snapshot is not None
    assert step.snapshot.occurred_at_ms == NOW_MS


# --------------------------------------------------------------------------- outcomes


@pytest.mark.parametrize(
    ("outcome", "is_skip", "consumes"),
    [
        (Outcome.APPLIED, False, True),
        (Outcome.DUPLICATE, False, False),
        (Outcome.PARKED, False, False),
        (Outcome.SKIPPED_MALFORMED, True, True),
        (Outcome.SKIPPED_UNKNOWN_TYPE, True, True),
        (Outcome.SKIPPED_UNKNOWN_GAME, True, True),
    ],
)
def test_outcome_flags(outcome: Outcome, is_skip: bool, consumes: bool) -> None:
    assert (outcome.is_skip, outcome.consumes) == (is_skip, consumes)


def test_skip_outcomes_are_the_metric_labels() -> None:
    assert [o.value for o in Outcome if o.is_skip] == ["malformed", "unknown_event_type", "unknown_game"]
