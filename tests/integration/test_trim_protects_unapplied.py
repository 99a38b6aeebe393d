"""Trimming never outruns the order repair, and a gap it could not prevent is loud (issue 11, item 4).

The Runtime Manager trims ``runtime:health_events`` to about
``GALAXY_HEALTH_STREAM_MAXLEN`` entries as it appends, never past the Game
Master bridge's offset.  An entry the bridge handed on but the broker lost is
behind that offset: before, under a steady load, it was trimmed within
``MAXLEN`` appends — long before the repair (``GALAXY_ORDER_REPAIR_AFTER_SECONDS``)
came for it — and the game was then left behind with no word.  Now the repair
keeps a floor the trim never passes (the oldest entry it may still re-read);
and an entry that is gone anyway (trimmed by hand, lost with Redis) raises
``galaxy_gm_health_event_gaps_total`` and an error log, and the game moves on.

Real Redis, PostgreSQL and Celery workers; the Runtime Manager side (the
health-event store and its outbox, whose append script trims) in this process,
with a ``MAXLEN`` of 200.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest
from sqlalchemy import Engine

from galaxy_tasks.adapters.postgres.engine import build_autocommit_engine, build_engine
from galaxy_tasks.adapters.postgres.health_events import PostgresHealthEventStore
from galaxy_tasks.adapters.postgres.outboxes import health_events_outbox
from galaxy_tasks.adapters.postgres.stream_outbox import PostgresStreamOutbox
from galaxy_tasks.contract import HEALTH_EVENTS_BRIDGE_KEYS, HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.service.health_publisher import publish_health_event
from galaxy_tasks.testing.cluster import FAST_SETTINGS, Cluster, wait_until
from tests.support.brokers import ON_BOTH_BROKERS, lose_one, queued
from tests.support.pipeline import Pipeline, now_ms

pytestmark = pytest.mark.integration

QUEUE = "gamemaster.health_events"
MAXLEN = 200
BUSY = [f"busy-{n:02d}" for n in range(20)]
REPAIR_AFTER_SECONDS = float(FAST_SETTINGS["GALAXY_ORDER_REPAIR_AFTER_SECONDS"])
REPAIR_INTERVAL_SECONDS = float(FAST_SETTINGS["GALAXY_ORDER_REPAIR_INTERVAL_SECONDS"])


class RuntimeManager:
    """Publishes health events the way the Runtime Manager's tasks do, into a stream trimmed to MAXLEN."""

    def __init__(self, pipeline: Pipeline) -> None:
        url = pipeline.database_url
        self.engines: tuple[Engine, Engine] = (
            build_autocommit_engine(url, pool_size=1, connect_timeout=5),
            build_engine(url, pool_size=1, connect_timeout=5),
        )
        self.store = PostgresHealthEventStore(self.engines[0])
        self.outbox = PostgresStreamOutbox(
            self.engines[1], pipeline.r, pipeline.redis_url, health_events_outbox(MAXLEN)
        )
        self.n = 0

    def publish(self, game: str, kind: str = "probe_failed") -> None:
        self.n += 1
        at = now_ms()
        if kind == "container_oom":
            event = HealthEvent.container_oom(game, "c", at, exit_code=137)
        else:
            event = HealthEvent.probe_failed(game, "c", at, consecutive_failures=self.n, last_error="timeout")
        publish_health_event(self.store, self.outbox, event)

    def close(self) -> None:
        for engine in self.engines:
            engine.dispose()


@pytest.fixture
def rtm(pipeline: Pipeline) -> Iterator[RuntimeManager]:
    side = RuntimeManager(pipeline)
    yield side
    side.close()


def _lose_the_handoff_of_one_entry(pipeline: Pipeline, cluster: Cluster, rtm: RuntimeManager) -> str:
    """The system without pool workers; "lost"'s entry handed on, then taken out of the broker."""
    pipeline.add_games({"lost": "running", **dict.fromkeys(BUSY, "running")})
    cluster.env.update(GALAXY_BACKLOG_THRESHOLD="1000000", GALAXY_DISPATCH_WINDOW="0")  # one task per entry
    cluster.long_running_worker()  # the bridge, and the control tasks: the order repair among them
    cluster.beat()
    rtm.publish("lost", "container_oom")
    entries = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange(HEALTH_EVENTS_STREAM))
    lost = entries[-1][0]
    wait_until(lambda: pipeline.offset() == lost and queued(pipeline, QUEUE) == 1, timeout=30, what="the handoff")
    assert lose_one(pipeline, QUEUE), "the broker lost it"
    return lost


def _load(rtm: RuntimeManager, count: int) -> None:
    for n in range(count):
        rtm.publish(BUSY[n % len(BUSY)])


def _oom(pipeline: Pipeline, game: str) -> bool:
    return pipeline.rows([game])[game][:2] == ("engine_unreachable", "oom")


@ON_BOTH_BROKERS
def test_a_broker_lost_entry_under_a_steady_load_is_repaired_before_the_trim_can_take_it(
    pipeline: Pipeline, cluster: Cluster, rtm: RuntimeManager
) -> None:
    lost = _lose_the_handoff_of_one_entry(pipeline, cluster, rtm)
    wait_until(
        lambda: pipeline.r.hget(HEALTH_EVENTS_BRIDGE_KEYS.repair_floor, "id") == lost,
        timeout=3 * REPAIR_INTERVAL_SECONDS,
        what="the repair to keep the trim from the lost entry",
    )
    cluster.pool_worker("pool", concurrency=2, queues=QUEUE)
    deadline = now_ms() + (REPAIR_AFTER_SECONDS + 2 * REPAIR_INTERVAL_SECONDS) * 1000
    while now_ms() < deadline and not _oom(pipeline, "lost"):
        _load(rtm, 50)  # the stream turns over several times during the repair's wait
    wait_until(lambda: _oom(pipeline, "lost"), timeout=30, what="the lost entry to be repaired")

    assert pipeline.metric("galaxy_gm_health_event_gaps_total") == 0
    assert rtm.n > 2 * MAXLEN, "the load turned the stream over past the lost entry before the repair came"
    _load(rtm, 2 * MAXLEN)  # repaired: the floor goes, the stream is trimmed to about MAXLEN again
    wait_until(
        lambda: not pipeline.r.exists(HEALTH_EVENTS_BRIDGE_KEYS.repair_floor) or _trimmed(pipeline, rtm),
        timeout=3 * REPAIR_INTERVAL_SECONDS,
        what="the floor to lift once nothing is behind",
    )
    wait_until(lambda: _trimmed(pipeline, rtm), timeout=30, what="the stream trimmed to about MAXLEN again")


def _trimmed(pipeline: Pipeline, rtm: RuntimeManager) -> bool:
    rtm.publish(BUSY[0])
    return int(pipeline.r.xlen(HEALTH_EVENTS_STREAM)) <= MAXLEN + MAXLEN // 10 + 1


def test_an_entry_trimmed_before_it_was_applied_raises_the_alarm_and_its_game_moves_on(
    pipeline: Pipeline, cluster: Cluster, rtm: RuntimeManager
) -> None:
    lost = _lose_the_handoff_of_one_entry(pipeline, cluster, rtm)
    _load(rtm, 5)
    after = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange(HEALTH_EVENTS_STREAM, min=f"({lost}", count=1))
    pipeline.r.xtrim(HEALTH_EVENTS_STREAM, minid=after[0][0], approximate=False)  # by hand: the lost entry is gone
    cluster.pool_worker("pool", concurrency=2, queues=QUEUE)
    wait_until(
        lambda: pipeline.metric("galaxy_gm_health_event_gaps_total") == 1,
        timeout=REPAIR_AFTER_SECONDS + 3 * REPAIR_INTERVAL_SECONDS,
        what="the gap alarm",
    )
    assert not _oom(pipeline, "lost"), "what the gone entry said is not known"
    wait_until(lambda: pipeline.cursors().get("lost") == lost, timeout=10, what="the cursor past the gone entry")
    rtm.publish("lost", "container_oom")  # the game is not stuck behind it
    wait_until(lambda: _oom(pipeline, "lost"), timeout=30, what="the game's next entry to be applied")
    assert pipeline.metric("galaxy_gm_health_event_gaps_total") == 1, "one alarm, not one per repair run"
