"""The Lobby snapshot: built from the row after the write, rendered with the fixed fields (SPEC §3)."""

from __future__ import annotations

import json

from galaxy_tasks.domain.gamemaster.records import SNAPSHOT_EVENT_TYPE, ConsumerCursor, GameRecord, LobbySnapshot


def test_snapshot_of_copies_the_row_and_the_given_time() -> None:
    record = GameRecord("g1", "engine_unreachable", "oom", 42)
    assert LobbySnapshot.of(record, 1700000000123) == LobbySnapshot(
        game_id="g1",
        current_turn=42,
        runtime_status="engine_unreachable",
        engine_health_summary="oom",
        occurred_at_ms=1700000000123,
    )


def test_snapshot_fields_are_the_fixed_lobby_event_fields_all_strings() -> None:
    fields = LobbySnapshot.of(GameRecord("g1", "running", "healthy", 7), 1700000000000).to_fields()
    assert fields == {
        "event_type": "runtime_snapshot_update",
        "game_id": "g1",
        "current_turn": "7",
        "runtime_status": "running",
        "engine_health_summary": "healthy",
        "player_turn_stats": "[]",
        "occurred_at_ms": "1700000000000",
    }
    assert all(isinstance(v, str) for v in fields.values())


def test_snapshot_player_turn_stats_is_a_json_array_text() -> None:
    snapshot = LobbySnapshot("g1", 1, "running", "healthy", 5, player_turn_stats=({"player": "p1"},))
    assert json.loads(snapshot.to_fields()["player_turn_stats"]) == [{"player": "p1"}]


def test_snapshot_keeps_an_empty_summary_as_an_empty_field() -> None:
    fields = LobbySnapshot.of(GameRecord("g1", "running", "", 0), 1).to_fields()
    assert fields["engine_health_summary"] == ""


def test_snapshot_event_type_is_the_fixed_discriminator() -> None:
    assert SNAPSHOT_EVENT_TYPE == "runtime_snapshot_update"


def test_a_fresh_cursor_has_applied_and_published_nothing() -> None:
    cursor = ConsumerCursor("g1")
    assert (cursor.last_entry_id, cursor.last_published_summary) == (None, None)
