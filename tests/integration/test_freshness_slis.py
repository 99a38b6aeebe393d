"""The freshness SLIs from real workers: every health entry applied is measured once at its commit, every
Lobby entry once at its append, and the Lobby's ages are the distance between the two stream ids (Redis's
clock), whatever the workers' own clocks say."""

from __future__ import annotations

from typing import cast

import pytest

from galaxy_tasks.contract import LOBBY_STREAM
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.testing.cluster import Cluster
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

EXITED = {"container_id": "c", "event_type": "container_exited", "occurred_at_ms": "5", "details": "{}"}


def test_each_entry_is_measured_once_at_its_commit_and_its_lobby_entry_at_its_append(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    games = [f"g{n}" for n in range(6)]
    pipeline.add_games(dict.fromkeys(games, "running"))
    cluster.pool_worker()
    cluster.long_running_worker()
    cluster.beat()
    ids = pipeline.xadd_health([{"game_id": game, **EXITED} for game in games])
    pipeline.wait_settled(ids, dict(zip(games, ids, strict=True)), timeout=30)

    lobby = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange(LOBBY_STREAM))
    assert len(lobby) == len(games)
    by_game = dict(zip(games, ids, strict=True))
    expected = sum(
        (StreamId.parse(entry_id).ms - StreamId.parse(by_game[fields["game_id"]]).ms) / 1000
        for entry_id, fields in lobby
    )

    assert pipeline.metric("galaxy_gm_health_entry_commit_seconds_count") == len(games)
    assert pipeline.metric("galaxy_gm_lobby_entry_freshness_seconds_count") == len(games)
    measured = pipeline.metric("galaxy_gm_lobby_entry_freshness_seconds_sum")
    assert abs(measured - expected) <= 0.002 * len(games), (measured, expected)
    assert pipeline.metric("galaxy_gm_health_entry_commit_seconds_sum") <= measured + 0.002 * len(games)
