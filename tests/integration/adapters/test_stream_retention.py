"""``gm:lobby_events`` and ``runtime:job_results`` keep a retention by age, never an unread entry (issue 11, item 8).

Real Redis: entries are written with ids of two hours ago and of now, the
outbox keeps one hour.  What is older goes — unless a consumer group has not
read it (after its last-delivered id) or not acknowledged it (its pending
list); a group that has read everything holds nothing back.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import cast

import pytest
from sqlalchemy import Engine

from galaxy_tasks.adapters.postgres.outboxes import LOBBY_OUTBOX_SPEC
from galaxy_tasks.adapters.postgres.stream_outbox import PostgresStreamOutbox
from galaxy_tasks.contract import LOBBY_STREAM
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000


def _outbox(pipeline: Pipeline, engines: tuple[Engine, Engine]) -> PostgresStreamOutbox:
    spec = replace(LOBBY_OUTBOX_SPEC, retention_ms=HOUR_MS)
    return PostgresStreamOutbox(engines[1], pipeline.r, pipeline.redis_url, spec)


def _stream_with_old_and_new_entries(pipeline: Pipeline) -> tuple[list[str], list[str]]:
    now = int(time.time() * 1000)
    old = [str(pipeline.r.xadd(LOBBY_STREAM, {"n": str(n)}, id=f"{now - 2 * HOUR_MS}-{n}")) for n in range(5)]
    new = [str(pipeline.r.xadd(LOBBY_STREAM, {"n": str(5 + n)})) for n in range(3)]
    return old, new


def _ids(pipeline: Pipeline) -> list[str]:
    return [entry_id for entry_id, _ in cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange(LOBBY_STREAM))]


def test_entries_older_than_the_retention_go_and_the_report_says_how_far_back_the_stream_goes(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    old, new = _stream_with_old_and_new_entries(pipeline)
    report = _outbox(pipeline, engines).enforce_retention()
    assert report is not None
    assert report.trimmed == len(old)
    assert _ids(pipeline) == new
    assert report.oldest_entry_age_seconds is not None
    assert report.oldest_entry_age_seconds < 60
    assert report.unread_ages_seconds == {}
    assert report.retention_seconds == 3600


def test_an_entry_a_consumer_group_has_not_read_or_not_acknowledged_is_kept(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    old, new = _stream_with_old_and_new_entries(pipeline)
    pipeline.r.xgroup_create(LOBBY_STREAM, "lobby", id=old[1])  # it read up to old[1]
    pipeline.r.xgroup_create(LOBBY_STREAM, "audit", id="$")  # it read everything
    pipeline.r.xreadgroup("audit", "a1", {LOBBY_STREAM: "0"}, count=1)  # nothing new: no pending
    report = _outbox(pipeline, engines).enforce_retention()
    assert report is not None
    assert _ids(pipeline) == old[1:] + new, "everything after what 'lobby' read stays, its last-delivered too"
    assert set(report.unread_ages_seconds) == {"lobby"}
    assert report.unread_ages_seconds["lobby"] > 7000

    pipeline.r.xreadgroup("lobby", "l1", {LOBBY_STREAM: ">"}, count=2)  # delivered old[2], old[3], not acked
    pipeline.r.xack(LOBBY_STREAM, "lobby", old[3])
    _outbox(pipeline, engines).enforce_retention()
    assert _ids(pipeline) == old[2:] + new, "the unacknowledged old[2] stays"
    pipeline.r.xack(LOBBY_STREAM, "lobby", old[2])
    pipeline.r.xreadgroup("lobby", "l1", {LOBBY_STREAM: ">"})
    pipeline.r.xack(LOBBY_STREAM, "lobby", old[4], *new)
    report = _outbox(pipeline, engines).enforce_retention()
    assert report is not None
    assert _ids(pipeline) == new
    assert report.unread_ages_seconds == {}


def test_a_stream_without_retention_is_kept_whole(pipeline: Pipeline, engines: tuple[Engine, Engine]) -> None:
    _stream_with_old_and_new_entries(pipeline)
    outbox = PostgresStreamOutbox(engines[1], pipeline.r, pipeline.redis_url, LOBBY_OUTBOX_SPEC)
    assert outbox.enforce_retention() is None
    assert len(_ids(pipeline)) == 8
