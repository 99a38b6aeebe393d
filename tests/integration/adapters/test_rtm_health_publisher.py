"""Publishing RTM health events on real PostgreSQL and Redis: snapshot + stream entry, never lost, never doubled.

``publish_health_event`` commits the ``health_snapshots`` upsert and the
outbox row together and appends right after commit; the periodic relay
appends whatever that missed (a crash after the commit, Redis down).
"""

from __future__ import annotations

import json
from typing import cast

import pytest
import redis
from sqlalchemy import Engine, text

from galaxy_tasks.adapters.postgres.health_events import PostgresHealthEventStore
from galaxy_tasks.adapters.postgres.outboxes import health_events_outbox
from galaxy_tasks.adapters.postgres.stream_outbox import PostgresStreamOutbox
from galaxy_tasks.contract import HEALTH_EVENTS_BRIDGE_KEYS, HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.service.health_publisher import publish_health_event
from galaxy_tasks.service.outbox import relay
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

AT = 1_700_000_000_000
DEAD_REDIS = "redis://127.0.0.1:1/0"


def _outbox(
    pipeline: Pipeline, engines: tuple[Engine, Engine], *, url: str = "", maxlen: int = 0
) -> PostgresStreamOutbox:
    url = url or pipeline.redis_url
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1)
    # The sweep sees rows at once (no durability wait: test_outbox_durability is about that).
    return PostgresStreamOutbox(engines[1], client, url, health_events_outbox(maxlen), durable_after_ms=0)


def _stream(pipeline: Pipeline) -> list[dict[str, str]]:
    entries = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange(HEALTH_EVENTS_STREAM))
    return [fields for _, fields in entries]


def _snapshot_row(pipeline: Pipeline, game_id: str) -> tuple[str, str, str, dict[str, object], int]:
    with pipeline.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT container_id, status, source, details, "
                "CAST(extract(epoch FROM observed_at) * 1000 AS bigint) AS ms "
                "FROM rtmanager.health_snapshots WHERE game_id = :g"
            ),
            {"g": game_id},
        ).one()
    return row.container_id, row.status, row.source, row.details, row.ms


def _relay(outbox: PostgresStreamOutbox) -> int:
    return relay(outbox, batch_games=100, time_budget_seconds=5)


def test_a_published_event_leaves_the_seed_000_snapshot_and_a_stream_entry_with_the_spec_fields(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    store, outbox = PostgresHealthEventStore(engines[0]), _outbox(pipeline, engines)
    published = publish_health_event(store, outbox, HealthEvent.container_oom("g1", "c-1", AT, exit_code=137))
    assert published.as_dict() == {"seq": 1, "appended": True}
    assert _snapshot_row(pipeline, "g1") == ("c-1", "oom", "docker_event", {"exit_code": 137}, AT)
    assert _stream(pipeline) == [
        {
            "game_id": "g1",
            "container_id": "c-1",
            "event_type": "container_oom",
            "occurred_at_ms": str(AT),
            "details": '{"exit_code":137}',
        }
    ]
    publish_health_event(store, outbox, HealthEvent.probe_recovered("g1", "c-1", AT + 5, prior_failures=3))
    assert _snapshot_row(pipeline, "g1") == ("c-1", "healthy", "probe", {"prior_failures": 3}, AT + 5)
    assert [f["event_type"] for f in _stream(pipeline)] == ["container_oom", "probe_recovered"]


def test_with_redis_down_the_snapshot_is_committed_and_the_relay_appends_the_event_exactly_once(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    store = PostgresHealthEventStore(engines[0])
    down = _outbox(pipeline, engines, url=DEAD_REDIS)
    published = publish_health_event(store, down, HealthEvent.container_exited("g1", "c-1", AT, exit_code=3))
    assert published.appended is False
    assert _snapshot_row(pipeline, "g1")[1] == "exited"
    assert _stream(pipeline) == []
    back = _outbox(pipeline, engines)
    assert back.backlog() == 1
    assert _relay(back) == 1
    assert _relay(back) == 0
    assert [f["details"] for f in _stream(pipeline)] == ['{"exit_code":3}']
    assert back.backlog() == 0


def test_an_event_committed_by_a_process_that_died_before_appending_is_appended_by_the_relay(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    store, outbox = PostgresHealthEventStore(engines[0]), _outbox(pipeline, engines)
    store.record(HealthEvent.container_disappeared("g1", "c-1", AT))  # committed, never appended
    publish_health_event(store, outbox, HealthEvent.container_started("g2", "c-2", AT, image_ref="engine:1"))
    assert [f["game_id"] for f in _stream(pipeline)] == ["g2"]
    assert _relay(outbox) == 1
    assert [f["event_type"] for f in _stream(pipeline)] == ["container_started", "container_disappeared"]


def test_per_game_the_stream_order_is_the_commit_order_even_when_a_later_commit_publishes_first(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    store, outbox = PostgresHealthEventStore(engines[0]), _outbox(pipeline, engines)
    first = store.record(HealthEvent.probe_failed("g1", "c-1", AT, consecutive_failures=3, last_error="timeout"))
    second = store.record(HealthEvent.probe_recovered("g1", "c-1", AT + 1, prior_failures=3))
    assert outbox.publish_committed([second]) == (0, ["g1"])
    assert outbox.relay_games(["g1"], wait_for_locks=True) == 2
    assert outbox.publish_committed([first]) == (0, [])
    assert [f["event_type"] for f in _stream(pipeline)] == ["probe_failed", "probe_recovered"]


def _bridge_saved(pipeline: Pipeline, offset: str, entries_through_offset: int) -> None:
    """What the Game Master bridge's save leaves in Redis: its offset, and the count of entries up to it."""
    pipeline.r.set(HEALTH_EVENTS_BRIDGE_KEYS.offset, offset)
    pipeline.r.hset(
        HEALTH_EVENTS_BRIDGE_KEYS.progress,
        mapping={"offset": offset, "entries_through_offset": entries_through_offset},
    )


def test_the_stream_is_trimmed_to_about_maxlen_but_never_past_the_game_masters_offset(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    store, outbox = PostgresHealthEventStore(engines[0]), _outbox(pipeline, engines, maxlen=20)
    for n in range(10):
        publish_health_event(store, outbox, HealthEvent.container_exited(f"g{n}", "c", AT + n, exit_code=n))
    gm_offset = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange(HEALTH_EVENTS_STREAM))[4][0]
    _bridge_saved(pipeline, gm_offset, 5)
    for n in range(10, 60):
        publish_health_event(store, outbox, HealthEvent.container_exited(f"g{n}", "c", AT + n, exit_code=n))
    ids = [entry_id for entry_id, _ in cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange(HEALTH_EVENTS_STREAM))]
    assert ids[0] == gm_offset, "everything after the Game Master's offset is kept, the offset entry too"
    assert len(ids) == 56

    _bridge_saved(pipeline, ids[-1], 60)  # the Game Master caught up
    for n in range(60, 65):
        publish_health_event(store, outbox, HealthEvent.container_exited(f"g{n}", "c", AT + n, exit_code=n))
    assert 20 <= int(pipeline.r.xlen(HEALTH_EVENTS_STREAM)) <= 22


def test_trimming_reads_no_entry_however_far_behind_the_game_master_is(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    """The Game Master bridge stopped with a backlog of 10 x MAXLEN: each publish trims at a constant cost."""
    store, outbox = PostgresHealthEventStore(engines[0]), _outbox(pipeline, engines, maxlen=20)
    publish_health_event(store, outbox, HealthEvent.container_exited("first", "c", AT, exit_code=0))
    first = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange(HEALTH_EVENTS_STREAM))[0][0]
    _bridge_saved(pipeline, first, 1)  # then the bridge stops
    pipeline.r.config_resetstat()
    for n in range(200):
        publish_health_event(store, outbox, HealthEvent.container_exited(f"g{n}", "c", AT + n, exit_code=n))
    stats = cast(dict[str, dict[str, int]], pipeline.r.info("commandstats"))
    assert "cmdstat_xrange" not in stats, "the trim read entries"
    assert "cmdstat_xrevrange" not in stats, "the trim read entries"
    assert int(pipeline.r.xlen(HEALTH_EVENTS_STREAM)) == 201, "nothing the Game Master has not passed is trimmed"
    trims = stats.get("cmdstat_xtrim", {}).get("calls", 0)
    assert trims <= 200


def test_the_stream_is_never_trimmed_before_the_game_master_has_an_offset(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    store, outbox = PostgresHealthEventStore(engines[0]), _outbox(pipeline, engines, maxlen=10)
    for n in range(30):
        publish_health_event(store, outbox, HealthEvent.container_exited(f"g{n}", "c", AT + n, exit_code=n))
    assert int(pipeline.r.xlen(HEALTH_EVENTS_STREAM)) == 30
    assert json.loads(_stream(pipeline)[0]["details"]) == {"exit_code": 0}
