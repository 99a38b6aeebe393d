"""``galaxy-tasks watch``: one readable line per stream entry."""

from __future__ import annotations

from galaxy_tasks.cli.watch import format_entry


def test_a_health_event_reads_as_what_the_rtm_observed_with_its_details() -> None:
    line = format_entry(
        "runtime:health_events",
        "1795386529858-0",
        {"game_id": "18081", "event_type": "container_exited", "details": '{"exit_code": 137}'},
    )
    assert line.endswith("RTM observed  game 18081        container_exited       exit_code=137")
    assert line.startswith("22:28:49.858")


def test_a_lobby_snapshot_reads_as_the_game_masters_status_and_health() -> None:
    line = format_entry(
        "gm:lobby_events",
        "1795386529868-0",
        {"game_id": "18081", "runtime_status": "engine_unreachable", "engine_health_summary": "exited"},
    )
    assert "GM  -> Lobby  game 18081" in line
    assert "status=engine_unreachable" in line
    assert line.endswith("health=exited")


def test_details_that_are_not_json_are_shown_as_they_are() -> None:
    line = format_entry("runtime:health_events", "1-0", {"game_id": "g", "event_type": "x", "details": "oops"})
    assert "details=oops" in line
