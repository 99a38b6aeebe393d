"""Readers of runtime:health_events on real Redis, with entries whose bytes are not text (SPEC §5 "Bad input").

Whatever a producer wrote, the bridge's reader, the order repair's reader and
``galaxy-tasks watch`` read past it: known fields that are not UTF-8 text are
named as unusable, unknown fields are ignored, nothing raises.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from galaxy_tasks.adapters.order_repair import PostgresRedisOrderRepairStore
from galaxy_tasks.adapters.redis.streams import RedisStreamReader
from galaxy_tasks.contract import HEALTH_EVENTS_BRIDGE_KEYS, HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.health_events import HEALTH_EVENT_FIELDS
from galaxy_tasks.domain.stream_fields import UNUSABLE_FIELDS
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

GALAXY_TASKS = str(Path(sys.executable).with_name("galaxy-tasks"))
GOOD = {"game_id": "g1", "container_id": "c", "event_type": "container_oom", "occurred_at_ms": "5", "details": "{}"}


def _hostile(pipeline: Pipeline) -> list[str]:
    return [
        str(pipeline.r.xadd(HEALTH_EVENTS_STREAM, {**GOOD, "details": b"\xff"})),  # type: ignore[dict-item]
        str(pipeline.r.xadd(HEALTH_EVENTS_STREAM, {**GOOD, b"\xfe": b"\x00"})),  # type: ignore[dict-item]
    ]


def test_the_bridges_reader_reads_and_describes_a_stream_whose_entries_are_not_text(pipeline: Pipeline) -> None:
    ids = _hostile(pipeline)
    raw = redis.Redis.from_url(pipeline.redis_url)
    reader = RedisStreamReader(raw, HEALTH_EVENTS_STREAM, pipeline.redis_url, known_fields=HEALTH_EVENT_FIELDS)
    info = reader.info()  # XINFO STREAM returns the first and the last entry: bytes too
    assert info is not None
    assert (info.length, info.last_entry_id) == (2, ids[-1])
    first, second = reader.read_after("0-0", 10, 0)
    assert first.fields == {**{k: v for k, v in GOOD.items() if k != "details"}, UNUSABLE_FIELDS: "details"}
    assert second.fields == GOOD
    assert reader.count_after("0-0", 10) == 2


def test_the_order_repair_reads_a_games_entries_past_bytes_that_are_not_text(pipeline: Pipeline) -> None:
    ids = _hostile(pipeline)
    store = PostgresRedisOrderRepairStore(
        pipeline.engine,
        pipeline.r,
        redis.Redis.from_url(pipeline.redis_url),
        stream=HEALTH_EVENTS_STREAM,
        keys=HEALTH_EVENTS_BRIDGE_KEYS,
        redis_url=pipeline.redis_url,
        floor_ttl_ms=30_000,
        floor_count_limit=100_000,
    )
    assert [e.entry_id for e in store.entries_of_game("g1", None, ids[-1])] == ids
    assert store.stalled_games(cutoff_ms=0, limit=10) == []


def watch(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    """``galaxy-tasks watch ARGS`` against the test's Redis, its output captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GALAXY_", "PROMETHEUS_"))}
    env.update(pipeline.env)
    return subprocess.run(
        [GALAXY_TASKS, "watch", *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_watch_shows_an_entry_that_is_not_text_and_goes_on(pipeline: Pipeline) -> None:
    _hostile(pipeline)
    done = watch(pipeline, "--from-start", "--max-entries", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()[1:]
    assert len(lines) == 2
    assert "details=\\xff" in lines[0]


def test_watch_for_one_game_as_json_shows_only_that_games_entries_one_object_each(pipeline: Pipeline) -> None:
    pipeline.xadd_health([{**GOOD, "game_id": game} for game in ("g1", "g2", "g1")])
    done = watch(pipeline, "--from-start", "--game", "g1", "--json", "--max-entries", "2")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]  # the banner went to stderr
    assert [(line["stream"], line["fields"]["game_id"]) for line in lines] == [(HEALTH_EVENTS_STREAM, "g1")] * 2
    assert "watching" in done.stderr
