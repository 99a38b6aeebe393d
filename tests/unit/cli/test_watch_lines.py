"""``galaxy-tasks watch --json``: one JSON object per entry, every field as the stream holds it."""

from __future__ import annotations

import json

from galaxy_tasks.cli.watch import json_line


def test_a_json_line_has_the_stream_the_id_its_time_and_every_field() -> None:
    line = json_line("gm:lobby_events", "1700000000123-4", {"game_id": "g 1", "runtime_status": "running\n"})

    assert "\n" not in line
    assert json.loads(line) == {
        "stream": "gm:lobby_events",
        "id": "1700000000123-4",
        "at": "2023-11-14T22:13:20.123+00:00",
        "fields": {"game_id": "g 1", "runtime_status": "running\n"},
    }
