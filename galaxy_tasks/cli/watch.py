"""``galaxy-tasks watch``: the health changes as they happen, one readable line per stream entry.

Follows ``runtime:health_events`` (what the Runtime Manager observed) and
``gm:lobby_events`` (what the Game Master made of it) from now on, or from the
start with ``--from-start``; ``--game`` keeps one game's lines, ``--json`` prints
one JSON object per entry (``stream``, ``id``, ``at``, ``fields``) for a program.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO, cast

from galaxy_tasks.adapters.redis.client import safe_redis_url, translated_errors
from galaxy_tasks.bootstrap import resources
from galaxy_tasks.contract import HEALTH_EVENTS_STREAM, LOBBY_STREAM
from galaxy_tasks.domain.stream_fields import decode_for_display

WATCHED = (HEALTH_EVENTS_STREAM, LOBBY_STREAM)


def format_entry(stream: str, entry_id: str, fields: Mapping[str, str]) -> str:
    """``12:03:04.567  RTM  game 18081  container_exited  exit_code=137`` and the like."""
    at = datetime.fromtimestamp(int(entry_id.split("-", maxsplit=1)[0]) / 1000, tz=UTC).strftime("%H:%M:%S.%f")[:-3]
    game = fields.get("game_id", "?")
    if stream == HEALTH_EVENTS_STREAM:
        try:
            details = json.loads(fields.get("details") or "{}")
        except ValueError:
            details = {"details": fields.get("details", "")}
        said = "  ".join(f"{key}={value}" for key, value in sorted(dict(details).items()))
        return f"{at}  RTM observed  game {game:<12} {fields.get('event_type', '?'):<22} {said}".rstrip()
    if stream == LOBBY_STREAM:
        return (
            f"{at}  GM  -> Lobby  game {game:<12} status={fields.get('runtime_status', '?'):<20} "
            f"health={fields.get('engine_health_summary', '')}"
        )
    return f"{at}  {stream}  {dict(fields)}"


def json_line(stream: str, entry_id: str, fields: Mapping[str, str]) -> str:
    """One entry as one JSON object: the stream, the id, its time (UTC, from the id), every field."""
    at = datetime.fromtimestamp(int(entry_id.split("-", maxsplit=1)[0]) / 1000, tz=UTC).isoformat(
        timespec="milliseconds"
    )
    return json.dumps({"stream": stream, "id": entry_id, "at": at, "fields": dict(fields)}, ensure_ascii=False)


def watch_command(
    *,
    from_start: bool = False,
    max_entries: int | None = None,
    game: str | None = None,
    as_json: bool = False,
    out: TextIO = sys.stdout,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    res = resources()
    r = res.raw_redis  # bytes: a producer's entry that is not UTF-8 is shown, never fatal
    positions: dict[Any, Any] = {stream: "0-0" if from_start else "$" for stream in WATCHED}
    where = safe_redis_url(res.settings.redis_url)
    about = f" for game {game}" if game is not None else ""
    print(
        f"watching {', '.join(WATCHED)}{about} on {where} (Ctrl-C to stop)",
        file=sys.stderr if as_json else out,
        flush=True,
    )
    render = json_line if as_json else format_entry
    shown = 0
    while not should_stop():
        with translated_errors(res.settings.redis_url):
            replies = cast(
                list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]], r.xread(positions, count=100, block=1000)
            )
        for raw_stream, entries in replies or []:
            stream = raw_stream.decode()
            for entry_id, fields in entries:
                positions[stream] = entry_id
                shown_fields = decode_for_display(fields)
                if game is not None and shown_fields.get("game_id") != game:
                    continue
                print(render(stream, entry_id.decode(), shown_fields), file=out, flush=True)
                shown += 1
                if max_entries is not None and shown >= max_entries:
                    return 0
    return 0
