"""``galaxy-tasks metrics --cluster``'s collector on the real stores: every series read at the scrape, so a
bridge nobody runs shows its lag growing, never the last value a dead process set."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from prometheus_client import CollectorRegistry

from galaxy_tasks.bootstrap import Resources
from galaxy_tasks.cli.cluster_metrics import ClusterCollector, build_version
from galaxy_tasks.config import Settings
from galaxy_tasks.contract import HEALTH_EVENTS_BRIDGE_KEYS, HEALTH_EVENTS_STREAM
from galaxy_tasks.long_running import registry
from galaxy_tasks.testing.services import free_loopback_port
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

STREAM = {"stream": HEALTH_EVENTS_STREAM}


def collector_for(env: dict[str, str]) -> tuple[CollectorRegistry, Resources]:
    settings = Settings.from_env(env)
    app = Celery("cluster-metrics-test")
    app.config_from_object("galaxy_tasks.celeryconfig")
    app.conf.update(broker_url=settings.broker_url)
    res = Resources(settings)
    scraped = CollectorRegistry()
    scraped.register(ClusterCollector(lambda: res, app))
    return scraped, res


@pytest.fixture
def scrape(pipeline: Pipeline) -> Iterator[CollectorRegistry]:
    scraped, res = collector_for(pipeline.env)
    yield scraped
    res.close()


def entry(game: str) -> dict[str, str]:
    return {"game_id": game, "container_id": "c", "event_type": "container_oom", "occurred_at_ms": "5", "details": "{}"}


def test_a_bridge_nobody_runs_shows_its_lag_in_entries_and_seconds_growing(
    pipeline: Pipeline, scrape: CollectorRegistry
) -> None:
    ids = pipeline.xadd_health([entry(f"g{n}") for n in range(5)])

    assert scrape.get_sample_value("galaxy_cluster_up") == 1
    assert scrape.get_sample_value("galaxy_cluster_stream_length", STREAM) == 5
    assert scrape.get_sample_value("galaxy_cluster_bridge_lag_entries", STREAM) == 5
    first = scrape.get_sample_value("galaxy_cluster_bridge_lag_seconds", STREAM)
    time.sleep(1.2)
    later = scrape.get_sample_value("galaxy_cluster_bridge_lag_seconds", STREAM)
    assert first is not None
    assert later is not None
    assert later >= first + 1.0

    # The bridge saved its offset at the third entry (as its Lua save does): two left.
    pipeline.r.set(HEALTH_EVENTS_BRIDGE_KEYS.offset, ids[2])
    pipeline.r.hset(HEALTH_EVENTS_BRIDGE_KEYS.progress, "entries_through_offset", 3)
    assert scrape.get_sample_value("galaxy_cluster_bridge_lag_entries", STREAM) == 2
    pipeline.r.set(HEALTH_EVENTS_BRIDGE_KEYS.offset, ids[4])
    pipeline.r.hset(HEALTH_EVENTS_BRIDGE_KEYS.progress, "entries_through_offset", 5)
    assert scrape.get_sample_value("galaxy_cluster_bridge_lag_entries", STREAM) == 0
    assert scrape.get_sample_value("galaxy_cluster_bridge_lag_seconds", STREAM) == 0


def test_queue_depth_leases_parked_entries_schema_and_build_come_from_the_stores(
    pipeline: Pipeline, scrape: CollectorRegistry
) -> None:
    pipeline.send_tasks("gamemaster.apply_health_event", [["1-0", {}], ["2-0", {}], ["3-0", {}]])  # no worker
    singleton = registry([])[0]

    assert scrape.get_sample_value("galaxy_cluster_queue_depth", {"queue": "gamemaster.health_events"}) == 3
    assert scrape.get_sample_value("galaxy_cluster_singleton_held", {"singleton": singleton.name}) == 0
    pipeline.r.set(singleton.lease_key, "host:1:x", px=60_000)
    assert scrape.get_sample_value("galaxy_cluster_singleton_held", {"singleton": singleton.name}) == 1
    assert scrape.get_sample_value("galaxy_cluster_parked_entries") == 0
    assert scrape.get_sample_value("galaxy_cluster_outbox_backlog", {"outbox": "gamemaster.lobby_outbox"}) == 0
    revisions = [s for m in scrape.collect() for s in m.samples if s.name == "galaxy_cluster_schema_revision"]
    assert len(revisions) == 1
    assert revisions[0].value == 1
    assert scrape.get_sample_value("galaxy_build_info", {"version": build_version(), "python": _python()}) == 1


def test_a_store_that_does_not_answer_gives_up_0_and_no_cluster_series_at_all(pipeline: Pipeline) -> None:
    dead_redis = f"redis://127.0.0.1:{free_loopback_port()}/0"
    env = pipeline.env | {"GALAXY_REDIS_URL": dead_redis, "GALAXY_BROKER_URL": dead_redis}
    scraped, res = collector_for(env)
    try:
        assert scraped.get_sample_value("galaxy_cluster_up") == 0
        assert scraped.get_sample_value("galaxy_cluster_bridge_lag_entries", STREAM) is None
        assert scraped.get_sample_value("galaxy_build_info", {"version": build_version(), "python": _python()}) == 1
    finally:
        res.close()


def _python() -> str:
    import platform

    return platform.python_version()


@pytest.mark.parametrize("offset", ["not-an-entry-id", b"\xff\xfe"])
def test_an_offset_that_cannot_be_read_gives_up_0_not_a_failed_scrape(
    pipeline: Pipeline, scrape: CollectorRegistry, offset: str | bytes
) -> None:
    pipeline.xadd_health([entry("g1")])
    raw = redis.Redis.from_url(pipeline.redis_url)
    raw.set(HEALTH_EVENTS_BRIDGE_KEYS.offset, offset)
    raw.close()

    assert scrape.get_sample_value("galaxy_cluster_up") == 0
    assert scrape.get_sample_value("galaxy_cluster_bridge_lag_entries", STREAM) is None
