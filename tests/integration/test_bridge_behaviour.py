"""The stream bridge on real Redis and real workers: backlog chunks, trimming, bad entries, shutdown."""

from __future__ import annotations

import random
from typing import Any

import pytest

from galaxy_tasks.contract import HEALTH_EVENTS_STREAM
from galaxy_tasks.testing.cluster import Cluster, wait_until
from galaxy_tasks.testing.seed001 import ReferenceGameMaster, RefRecord
from tests.support.brokers import ON_BOTH_BROKERS
from tests.support.events import last_entry_by_game, random_entries
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration


def _reference(games: dict[str, str], entries: list[dict[str, str]]) -> ReferenceGameMaster:
    reference = ReferenceGameMaster(records={g: RefRecord(s) for g, s in games.items()})
    for fields in entries:
        reference.handle(fields)
    return reference


@ON_BOTH_BROKERS
def test_backlog_is_caught_up_in_ordered_chunks_with_the_same_result(pipeline: Pipeline, cluster: Cluster) -> None:
    rng = random.Random(7)
    games = {f"g{i}": "running" for i in range(100)}
    pipeline.add_games(games)
    entries = random_entries(rng, list(games), 3000)
    entry_ids = pipeline.xadd_health(entries)  # an outage's worth of entries before the bridge starts
    cluster.env.update(GALAXY_BACKLOG_THRESHOLD="200", GALAXY_BACKLOG_BATCH_SIZE="400", GALAXY_BACKLOG_PARTITIONS="4")
    cluster.pool_worker("pool-a", concurrency=2)
    cluster.pool_worker("pool-b", concurrency=2)
    cluster.long_running_worker()
    cluster.beat()

    pipeline.wait_settled(entry_ids, last_entry_by_game(entry_ids, entries), timeout=120)

    reference = _reference(games, entries)
    assert pipeline.rows(games) == {
        g: (r.status, r.engine_health, r.current_turn) for g, r in reference.records.items()
    }
    assert pipeline.lobby_snapshots(games) == {g: s for g, s in reference.snapshots.items() if s}
    chunked = pipeline.metric("galaxy_bridge_entries_dispatched_total", {"mode": "chunk"})
    assert chunked >= 2800, f"most of the backlog goes out in chunks, got {chunked}"
    assert pipeline.metric("galaxy_bridge_lag_entries") == 0


@ON_BOTH_BROKERS
def test_malformed_entries_are_counted_and_skipped_and_the_stream_never_stalls(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    pipeline.add_games({"g1": "running"})
    good = {"game_id": "g1", "container_id": "c", "event_type": "container_oom", "occurred_at_ms": "5", "details": "{}"}
    entries = [
        {"container_id": "c", "event_type": "container_oom", "occurred_at_ms": "5", "details": "{}"},
        {**good, "game_id": "   "},
        {**good, "event_type": ""},
        {**good, "occurred_at_ms": ""},
        {**good, "occurred_at_ms": "abc"},
        {**good, "occurred_at_ms": "0"},
        {**good, "event_type": "container_paused"},
        {**good, "game_id": "nobody-knows-me"},
        good,
    ]
    cluster.pool_worker()
    cluster.long_running_worker()
    cluster.beat()
    entry_ids = pipeline.xadd_health(entries)

    pipeline.wait_settled(entry_ids, {"g1": entry_ids[-1], "nobody-knows-me": entry_ids[-2]})

    assert pipeline.rows(["g1"]) == {"g1": ("engine_unreachable", "oom", 0)}
    skipped = "galaxy_gm_health_events_skipped_total"
    wait_until(lambda: pipeline.metric(skipped) == 8, timeout=10, what="all eight skips to be counted")
    assert pipeline.metric(skipped, {"reason": "malformed"}) == 6
    assert pipeline.metric(skipped, {"reason": "unknown_event_type"}) == 1
    assert pipeline.metric(skipped, {"reason": "unknown_game"}) == 1
    assert pipeline.metric("galaxy_gm_health_events_consumed_total") == 9


@ON_BOTH_BROKERS
def test_entries_with_bytes_that_are_not_text_are_skipped_or_ignored_and_never_stop_the_bridge(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    """SPEC §5 "Bad input": a non-UTF-8 byte in an extra field is ignored; in a known field, the entry is skipped."""
    pipeline.add_games({"g1": "running"})
    oom = {"game_id": "g1", "container_id": "c", "event_type": "container_oom", "occurred_at_ms": "5", "details": "{}"}
    back = {**oom, "event_type": "probe_recovered", "details": '{"prior_failures": 0}'}
    entries: list[dict[Any, Any]] = [
        {**oom, "note": b"\xff"},  # an extra field of any bytes: ignored, the entry applies
        {**back, "details": b"\xe2\x82"},  # a known field cut in the middle of a character: malformed
        {**back, "game_id": b"g1\xff"},  # no game to speak of: malformed
        {**back, "event_type": "probe_recovered\x00"},  # NUL: no text column can hold it
        {**back, "game_id": "g" * 5000},  # longer than any stored id can be
        {b"\xff\xfe": b"\x00\xff", **back},  # an unknown field name of any bytes: ignored, applies
    ]
    cluster.pool_worker()
    bridge = cluster.long_running_worker()
    cluster.beat()
    entry_ids = pipeline.xadd_health(entries)

    pipeline.wait_settled(entry_ids, {"g1": entry_ids[-1]})

    assert pipeline.rows(["g1"]) == {"g1": ("running", "healthy", 0)}
    assert pipeline.lobby_snapshots(["g1"]) == {"g1": [("engine_unreachable", "oom", "0"), ("running", "healthy", "0")]}
    skipped = "galaxy_gm_health_events_skipped_total"
    wait_until(lambda: pipeline.metric(skipped) == 4, timeout=10, what="the four malformed entries to be counted")
    assert pipeline.metric(skipped, {"reason": "malformed"}) == 4
    assert "UnicodeDecodeError" not in bridge.log_text()
    resumed = [
        line for line in bridge.log_text().splitlines() if "bridge_resumed" in line and HEALTH_EVENTS_STREAM in line
    ]
    assert len(resumed) == 1, "the bridge never died on an entry"


def test_trimming_past_the_offset_is_reported_loudly_and_the_bridge_goes_on(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    pipeline.add_games({"g1": "running"})
    entry = {"game_id": "g1", "container_id": "c", "event_type": "probe_failed", "occurred_at_ms": "5", "details": "{}"}
    cluster.pool_worker()
    bridge_worker = cluster.long_running_worker("lr-1")
    cluster.beat()
    first = pipeline.xadd_health([entry] * 3)
    pipeline.wait_settled(first, {"g1": first[-1]})

    bridge_worker.popen.terminate()  # warm shutdown: the bridge must notice and return
    bridge_worker.popen.wait(timeout=20)
    assert "reason=shutdown" in bridge_worker.log_text()
    later = pipeline.xadd_health([{**entry, "event_type": "container_exited"}] + [entry] * 9)
    pipeline.r.xtrim(HEALTH_EVENTS_STREAM, maxlen=4, approximate=False)  # drops entries the bridge never handed on
    cluster.long_running_worker("lr-2")

    pipeline.wait_settled(later, {"g1": later[-1]})
    assert pipeline.metric("galaxy_bridge_trim_gaps_total") == 1
    logs = "".join(p.log_text() for p in cluster.processes)
    assert "bridge_stream_trimmed_past_offset" in logs
    # The exit was trimmed away before the Game Master saw it: the game is still running.
    assert pipeline.rows(["g1"]) == {"g1": ("running", "probe_failed", 0)}
