"""A database that went back in time never makes a new outbox row look published (issue 11, item 6).

Redis remembers per game the last row appended to the stream; PostgreSQL gives
out the rows' numbers.  After a restore from a dump taken earlier, or a
downgrade that dropped the tables, PostgreSQL numbers new rows with numbers
Redis has seen appended already.  Those rows must still reach the stream, in
order, and nothing may overtake them: in particular the new row whose number is
exactly the old mark + 1 must not be taken for "next" by the unlocked fast path.
Real PostgreSQL (``pg_dump``/``pg_restore``, Alembic), real Redis.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import Engine, text

from galaxy_tasks.adapters.postgres.engine import build_autocommit_engine, build_engine
from galaxy_tasks.adapters.postgres.health_events import PostgresHealthEventStore
from galaxy_tasks.adapters.postgres.migrate import downgrade, upgrade
from galaxy_tasks.adapters.postgres.outboxes import health_events_outbox
from galaxy_tasks.adapters.postgres.stream_outbox import PostgresStreamOutbox
from galaxy_tasks.contract import HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.service.health_publisher import publish_health_event
from galaxy_tasks.service.outbox import relay
from tests.support.pipeline import Pipeline
from tests.support.services import dump_database, restore_database

pytestmark = pytest.mark.integration

AT = 1_700_000_000_000


@dataclass
class RuntimeManagerSide:
    """The RTM's health-event store and outbox on fresh engines (rebuilt after the database is replaced)."""

    pipeline: Pipeline
    reports: list[tuple[str, list[str]]] = field(default_factory=list)
    engines: tuple[Engine, Engine] | None = None

    def connect(self) -> None:
        self.close()
        url = self.pipeline.database_url
        self.engines = (
            build_autocommit_engine(url, pool_size=2, connect_timeout=5),
            build_engine(url, pool_size=2, connect_timeout=5),
        )
        self.store = PostgresHealthEventStore(self.engines[0])
        self.outbox = PostgresStreamOutbox(
            self.engines[1],
            self.pipeline.r,
            self.pipeline.redis_url,
            health_events_outbox(0),
            durable_after_ms=0,
            on_new_generation=lambda stream, games: self.reports.append((stream, list(games))),
        )

    def close(self) -> None:
        for engine in self.engines or ():
            engine.dispose()
        self.engines = None

    def publish(self, *exit_codes: int) -> None:
        """One ``container_exited`` per code, each appended right after its commit when next in turn."""
        for code in exit_codes:
            publish_health_event(
                self.store, self.outbox, HealthEvent.container_exited("g1", "c1", AT + code, exit_code=code)
            )

    def relay(self) -> None:
        relay(self.outbox, batch_games=10, time_budget_seconds=5)

    def relay_until_empty(self) -> None:
        """Relay until every row is appended and deleted (rows wait for their durability checkpoint)."""
        for _ in range(5):
            self.relay()
            if self.rows_left() == 0:
                return
        raise AssertionError(f"{self.rows_left()} outbox rows left after five relays")

    def rows_left(self) -> int:
        assert self.engines is not None
        with self.engines[1].connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM rtmanager.health_event_outbox")).scalar_one())


@pytest.fixture
def rtm(pipeline: Pipeline) -> Iterator[RuntimeManagerSide]:
    side = RuntimeManagerSide(pipeline)
    side.connect()
    yield side
    side.close()


def _stream_codes(pipeline: Pipeline) -> list[int]:
    entries = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange(HEALTH_EVENTS_STREAM))
    return [int(json.loads(fields["details"])["exit_code"]) for _, fields in entries]


def test_rows_a_restored_database_numbers_again_reach_the_stream_in_order_and_the_change_is_reported(
    rtm: RuntimeManagerSide, pipeline: Pipeline, tmp_path: Path
) -> None:
    rtm.publish(0, 1)
    rtm.relay_until_empty()
    dump = tmp_path / "before.dump"
    dump_database(pipeline.database_url, dump)  # the backup: two rows numbered, both out
    rtm.publish(2, 3, 4)  # numbers 3..5; the mark is 5
    assert _stream_codes(pipeline) == [0, 1, 2, 3, 4]

    rtm.close()
    restore_database(pipeline.database_url, dump)
    rtm.connect()
    rtm.publish(5, 6, 7)  # numbered 3..5 again
    assert _stream_codes(pipeline) == [0, 1, 2, 3, 4], "not appended right after commit: the relay sees to them"
    assert rtm.rows_left() == 3, "and no row looks published (deleted)"
    rtm.publish(8)  # numbered 6, the old mark + 1: never "next" (it would overtake 5, 6, 7)
    assert _stream_codes(pipeline) == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert rtm.reports == [(HEALTH_EVENTS_STREAM, ["g1"])]

    rtm.publish(9)  # the new generation's chain goes on: next in turn again, right after commit
    assert _stream_codes(pipeline) == list(range(10))
    rtm.relay_until_empty()
    assert _stream_codes(pipeline) == list(range(10)), "nothing appended twice"
    assert len(rtm.reports) == 1


def test_rows_numbered_from_one_after_a_downgrade_and_upgrade_reach_the_stream(
    rtm: RuntimeManagerSide, pipeline: Pipeline
) -> None:
    rtm.publish(0, 1, 2)
    rtm.relay_until_empty()
    rtm.close()
    downgrade(pipeline.database_url, "base")
    upgrade(pipeline.database_url)
    rtm.connect()
    rtm.publish(3, 4)  # numbered 1 and 2 again
    rtm.relay_until_empty()
    assert _stream_codes(pipeline) == [0, 1, 2, 3, 4]
    assert rtm.reports == [(HEALTH_EVENTS_STREAM, ["g1"])]


def test_rows_still_waiting_when_the_database_went_back_are_appended_at_least_once(
    rtm: RuntimeManagerSide, pipeline: Pipeline, tmp_path: Path
) -> None:
    """A dump taken while rows wait in the outbox holds rows the old generation appended later: they may
    come again, but every new row comes, after them."""
    rtm.publish(0, 1)
    dump = tmp_path / "busy.dump"
    dump_database(pipeline.database_url, dump)  # both rows still in the outbox (appended, not yet deleted)
    rtm.publish(2)
    rtm.relay_until_empty()
    rtm.close()
    restore_database(pipeline.database_url, dump)
    rtm.connect()
    rtm.publish(3)
    rtm.relay_until_empty()
    assert _stream_codes(pipeline) == [0, 1, 2, 0, 1, 3]


def test_the_marks_of_a_game_idle_for_a_day_are_forgotten_and_its_next_row_still_comes_once(
    rtm: RuntimeManagerSide, pipeline: Pipeline
) -> None:
    spec = rtm.outbox.spec
    checkpoints = f"{spec.mark_key}:durable_checkpoint"
    rtm.publish(0, 1)
    publish_health_event(rtm.store, rtm.outbox, HealthEvent.container_exited("g2", "c1", AT, exit_code=50))
    rtm.relay_until_empty()
    # g3's row is out (appended right after its commit) but still in the outbox: no sweep since.
    publish_health_event(rtm.store, rtm.outbox, HealthEvent.container_exited("g3", "c1", AT, exit_code=60))
    for game in ("g1", "g3"):  # a day passes for g1 and g3, not for g2
        mark = pipeline.r.hget(checkpoints, game)
        assert mark is not None
        pipeline.r.hset(checkpoints, game, f"1@{str(mark).partition('@')[2]}")
    assert rtm.rows_left() == 1

    assert rtm.outbox.forget_idle_games(idle_ms=3_600_000, batch=100) == 1
    assert pipeline.r.hget(spec.mark_key, "g1") is None, "g1: idle, no rows: forgotten"
    assert pipeline.r.hget(spec.mark_key, "g2") is not None, "g2: not idle"
    assert pipeline.r.hget(spec.mark_key, "g3") is not None, "g3: a row is left"

    rtm.publish(7)
    rtm.relay_until_empty()
    assert [c for c in _stream_codes(pipeline) if c < 50] == [0, 1, 7], "the next row came, once, nothing again"
    assert rtm.reports == []
