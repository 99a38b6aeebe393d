"""The bridge's stored state in real Redis: a replay request is applied only by the lease holder."""

from __future__ import annotations

import pytest

from galaxy_tasks.adapters.redis.bridge_state import RedisBridgeStateStore
from galaxy_tasks.contract import BridgeKeys
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

KEYS = BridgeKeys.for_stream("test", "replays")


def store(pipeline: Pipeline, holder: str) -> RedisBridgeStateStore:
    return RedisBridgeStateStore(pipeline.r, KEYS, holder, pipeline.redis_url)


def test_the_lease_holder_moves_its_offset_to_the_replay_request_and_keeps_the_predecessors(
    pipeline: Pipeline,
) -> None:
    """The bridge derives each game's predecessor for the replay from them (and the stream)."""
    r = pipeline.r
    r.set(KEYS.lease, "me")
    mine = store(pipeline, "me")
    assert mine.save("9-0", {"g1": "9-0"}, lag=0, entries_through_offset=9)
    assert mine.apply_replay_request() is None  # nothing asked
    r.set(KEYS.replay_request, "3-0")
    assert mine.apply_replay_request() == "3-0"
    state = mine.load()
    assert (state.offset, state.last_by_partition, state.entries_through_offset) == ("3-0", {"g1": "9-0"}, None)
    assert not r.exists(KEYS.replay_request)


def test_a_bridge_that_lost_its_lease_leaves_the_request_for_the_holder(pipeline: Pipeline) -> None:
    r = pipeline.r
    r.set(KEYS.lease, "someone-else")
    r.set(KEYS.offset, "9-0")
    r.set(KEYS.replay_request, "3-0")
    assert store(pipeline, "me").apply_replay_request() is None
    assert r.get(KEYS.offset) == "9-0"
    assert r.get(KEYS.replay_request) == "3-0"


def test_forgetting_drops_a_partition_only_while_its_entry_is_the_one_named_and_the_lease_is_held(
    pipeline: Pipeline,
) -> None:
    r = pipeline.r
    r.set(KEYS.lease, "me")
    mine = store(pipeline, "me")
    assert mine.save("9-0", {"g1": "5-0", "g2": "7-0", "g3": "9-0"}, lag=0, entries_through_offset=9)
    assert mine.forget({"g1": "5-0", "g2": "6-0"})  # g2 was handed a newer entry since: kept
    assert mine.load().last_by_partition == {"g2": "7-0", "g3": "9-0"}
    r.set(KEYS.lease, "someone-else")
    assert not mine.forget({"g3": "9-0"})
    assert mine.load().last_by_partition == {"g2": "7-0", "g3": "9-0"}
