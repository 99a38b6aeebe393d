"""An outbox row is deleted only once Redis has its entry on disk (issue 11, item 8).

With ``appendfsync everysec`` a crash may take the last second or two of writes.
A relay that deletes a row right after appending its entry loses that entry for
good when such a crash follows.  Here Redis runs with ``everysec``; while events
are published and relayed, its append-only files are copied, and 1.5 s later
Redis is killed (``kill -9``) and started again *from that copy*: a crash that
lost everything written in its last 1.5 s, which is what ``everysec`` allows and
then some.  Every row the relay deleted must still have its entry on the stream,
and the relay must then append what the crash took.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis
from sqlalchemy import Engine, text

from galaxy_tasks.adapters.postgres.health_events import PostgresHealthEventStore
from galaxy_tasks.adapters.postgres.outboxes import health_events_outbox
from galaxy_tasks.adapters.postgres.stream_outbox import PostgresStreamOutbox
from galaxy_tasks.contract import HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.service.health_publisher import publish_health_event
from galaxy_tasks.service.outbox import relay
from tests.support.pipeline import Pipeline
from tests.support.private_services import PrivateRedis

pytestmark = pytest.mark.integration

LOST_WINDOW_SECONDS = 1.5
DURABLE_AFTER_SECONDS = PostgresStreamOutbox.DEFAULT_DURABLE_AFTER_MS / 1000
AT = 1_700_000_000_000


@pytest.fixture
def everysec_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(
        data_dir=tmp_path / "redis-data", log_path=tmp_path / "redis-server.log", appendfsync="everysec"
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _stream_details(url: str) -> set[int]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        entries = cast(list[tuple[str, dict[str, str]]], client.xrange(HEALTH_EVENTS_STREAM))
    finally:
        client.close()
    return {int(json.loads(f["details"])["exit_code"]) for _, f in entries}


def _rows_left(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT fields FROM rtmanager.health_event_outbox")).all()
    return {int(json.loads(row.fields["details"])["exit_code"]) for row in rows}


def test_no_row_is_deleted_before_a_crash_could_no_longer_take_its_entry(
    pipeline: Pipeline, engines: tuple[Engine, Engine], everysec_redis: PrivateRedis, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(everysec_redis.url, decode_responses=True, socket_timeout=2)
    outbox = PostgresStreamOutbox(engines[1], client, everysec_redis.url, health_events_outbox(0))
    store = PostgresHealthEventStore(engines[0])
    published: list[int] = []
    copy = tmp_path / "aof-copy"
    started = time.monotonic()
    copied_at: float | None = None
    n = 0
    while copied_at is None or time.monotonic() - copied_at < LOST_WINDOW_SECONDS:
        publish_health_event(store, outbox, HealthEvent.container_exited(f"g{n % 7}", "c", AT + n, exit_code=n))
        published.append(n)
        relay(outbox, batch_games=100, time_budget_seconds=1)
        n += 1
        if copied_at is None and time.monotonic() - started > 4.5:  # past the durability age once
            shutil.copytree(everysec_redis.data_dir, copy)
            copied_at = time.monotonic()
        time.sleep(0.02)
    client.close()
    everysec_redis.kill9()
    shutil.rmtree(everysec_redis.data_dir)
    shutil.copytree(copy, everysec_redis.data_dir)  # the crash lost the last 1.5 s of writes
    everysec_redis.start()

    on_stream, left = _stream_details(everysec_redis.url), _rows_left(engines[1])
    deleted = set(published) - left
    assert deleted, "the relay deleted rows during the run (the test needs some)"
    assert deleted <= on_stream, f"rows deleted whose entries the crash took: {sorted(deleted - on_stream)}"

    client = redis.Redis.from_url(everysec_redis.url, decode_responses=True, socket_timeout=2)
    outbox = PostgresStreamOutbox(engines[1], client, everysec_redis.url, health_events_outbox(0))
    time.sleep(DURABLE_AFTER_SECONDS)  # the sweep looks at a row once it is that old
    relay(outbox, batch_games=100, time_budget_seconds=5)
    length = int(client.xlen(HEALTH_EVENTS_STREAM))
    client.close()
    assert _stream_details(everysec_redis.url) == set(published), "the relay appended what the crash took"
    assert length == len(published), "and nothing twice"
