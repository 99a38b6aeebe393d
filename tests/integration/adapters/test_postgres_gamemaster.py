"""The Game Master's PostgreSQL adapters against a real server: locking, visibility, errors, the outbox.

The per-event unit of work sends its own ``BEGIN``/``COMMIT`` inside two round
trips and skips the parking read unless the cursor counts parked entries; these
tests pin what that must not lose: what a waiting transaction sees once it gets
the lock, that a failed write leaves nothing behind, and that a dead pooled
connection costs no task.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import cast

import pytest
import redis
from sqlalchemy import Engine, text

from galaxy_tasks.adapters.postgres.health_consumer_uow import SqlAlchemyHealthConsumerUnitOfWork
from galaxy_tasks.adapters.postgres.outboxes import LOBBY_OUTBOX_SPEC
from galaxy_tasks.adapters.postgres.stream_outbox import PostgresStreamOutbox
from galaxy_tasks.contract import LOBBY_STREAM
from galaxy_tasks.domain.errors import ValueRefused
from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord, LobbySnapshot, QueuedSnapshot
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.ports.gamemaster import ConsumerWrites, LockedGames
from galaxy_tasks.ports.outbox import OutboxEntry, OutboxPage
from galaxy_tasks.service.outbox import relay
from galaxy_tasks.testing.cluster import wait_until
from tests.support.pipeline import Pipeline


def _uow(engines: tuple[Engine, Engine]) -> SqlAlchemyHealthConsumerUnitOfWork:
    return SqlAlchemyHealthConsumerUnitOfWork(engines[0])


def _snapshot(game_id: str, status: str, health: str, seq: int, entry_id: str) -> QueuedSnapshot:
    return QueuedSnapshot(entry_id, seq, LobbySnapshot.of(GameRecord(game_id, status, health, 3), 1700000000000 + seq))


def _wait_for_a_blocked_lock(pipeline: Pipeline) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )

    def blocked() -> bool:
        with pipeline.engine.connect() as conn:
            return int(conn.execute(query).scalar_one()) > 0

    wait_until(blocked, timeout=10, what="the second transaction to wait for the cursor lock")


def _lock_in_thread(engines: tuple[Engine, Engine], game_ids: list[str]) -> tuple[threading.Thread, list[LockedGames]]:
    seen: list[LockedGames] = []

    def run() -> None:
        with _uow(engines) as uow:
            seen.append(uow.lock(game_ids))

    thread = threading.Thread(target=run)
    thread.start()
    return thread, seen


def test_lock_sees_what_the_transaction_it_waited_for_committed_parking_and_record_included(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    pipeline.add_games({"g1": "running"}, current_turn=3)
    parked = Handoff("3-0", {"game_id": "g1", "event_type": "probe_failed"}, "2-0")
    with _uow(engines) as first:
        locked = first.lock(["g1"])
        assert locked.parked == {}
        thread, seen = _lock_in_thread(engines, ["g1"])
        _wait_for_a_blocked_lock(pipeline)
        first.commit(
            ConsumerWrites(
                now_ms=1,
                records=[GameRecord("g1", "engine_unreachable", "oom", 3)],
                cursors=[ConsumerCursor("g1", "1-0", "oom", lobby_seq=1)],
                snapshots=[_snapshot("g1", "engine_unreachable", "oom", 1, "1-0")],
                park=[parked],
            )
        )
    thread.join(timeout=10)
    assert not thread.is_alive()
    (second,) = seen
    assert second.cursors["g1"] == ConsumerCursor("g1", "1-0", "oom", lobby_seq=1)
    assert second.records["g1"] == GameRecord("g1", "engine_unreachable", "oom", 3)
    assert second.parked == {"g1": [parked]}


def test_unparking_the_last_entry_lets_the_next_transaction_skip_the_parking_read(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    pipeline.add_games({"g1": "running"})
    parked = Handoff("3-0", {"game_id": "g1", "event_type": "probe_failed"}, "2-0")
    with _uow(engines) as uow:
        uow.lock(["g1"])
        uow.commit(ConsumerWrites(now_ms=1, park=[parked]))
    with _uow(engines) as uow:
        assert uow.lock(["g1"]).parked == {"g1": [parked]}
        uow.commit(ConsumerWrites(now_ms=1, unpark=[("g1", "3-0")]))
    with pipeline.engine.connect() as conn:
        counts = conn.execute(text("SELECT parked_count FROM gamemaster.health_event_cursors")).scalars().all()
        left = conn.execute(text("SELECT count(*) FROM gamemaster.health_event_parked")).scalar_one()
    assert (counts, left) == ([0], 0)
    with _uow(engines) as uow:
        assert uow.lock(["g1"]).parked == {}


def test_a_failed_write_commits_nothing_and_leaves_the_connection_usable(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    pipeline.add_games({"g1": "running"})
    with _uow(engines) as uow:
        uow.lock(["g1"])
        uow.commit(ConsumerWrites(now_ms=1, snapshots=[_snapshot("g1", "running", "healthy", 1, "1-0")]))
    before = pipeline.rows()

    def write_a_taken_snapshot_number() -> None:
        with _uow(engines) as uow:
            uow.lock(["g1"])
            uow.commit(
                ConsumerWrites(
                    now_ms=2,
                    records=[GameRecord("g1", "engine_unreachable", "oom", 0)],
                    cursors=[ConsumerCursor("g1", "2-0", "oom", lobby_seq=1)],
                    snapshots=[_snapshot("g1", "engine_unreachable", "oom", 1, "2-0")],  # number 1 is taken
                )
            )

    with pytest.raises(ValueRefused) as refused:  # SQLSTATE class 23: the values, never the moment
        write_a_taken_snapshot_number()
    assert refused.value.sqlstate == "23505"
    assert pipeline.rows() == before
    with pipeline.engine.connect() as conn:
        cursor = conn.execute(text("SELECT last_entry_id FROM gamemaster.health_event_cursors")).scalar_one()
        in_transaction = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'galaxy_tasks' AND state <> 'idle'")
        ).scalar_one()
    assert (cursor, in_transaction) == (None, 0)
    with _uow(engines) as uow:  # the pooled connection is clean: this one commits
        uow.lock(["g1"])
        uow.commit(ConsumerWrites(now_ms=3, records=[GameRecord("g1", "finished", "", 0)]))
    assert pipeline.rows()["g1"][0] == "finished"


def test_a_pooled_connection_killed_by_the_server_costs_no_failed_unit_of_work(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    pipeline.add_games({"g1": "running"})
    with _uow(engines) as uow:
        uow.lock(["g1"])
    with pipeline.engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'galaxy_tasks'"
            )
        ).scalar_one()
    assert killed >= 1
    time.sleep(0.2)
    with _uow(engines) as uow:
        assert uow.lock(["g1"]).records["g1"].status == "running"
        uow.commit(ConsumerWrites(now_ms=1, cursors=[ConsumerCursor("g1", "1-0")]))


# --------------------------------------------------------------------------- the Lobby outbox


@pytest.fixture
def outbox(pipeline: Pipeline, engines: tuple[Engine, Engine]) -> Iterator[PostgresStreamOutbox]:
    client = redis.Redis.from_url(pipeline.redis_url, decode_responses=True)
    yield PostgresStreamOutbox(engines[1], client, pipeline.redis_url, LOBBY_OUTBOX_SPEC, durable_after_ms=0)
    client.close()


def _commit_snapshots(engines: tuple[Engine, Engine], *snapshots: QueuedSnapshot) -> list[OutboxEntry]:
    games = sorted({s.game_id for s in snapshots})
    with _uow(engines) as uow:
        locked = uow.lock(games)
        cursors = [
            ConsumerCursor(g, None, None, max(s.seq for s in snapshots if s.game_id == g)) for g in locked.cursors
        ]
        return uow.commit(ConsumerWrites(now_ms=1, cursors=cursors, snapshots=snapshots))


def _entries(*snapshots: QueuedSnapshot) -> list[OutboxEntry]:
    return [OutboxEntry(s.game_id, s.seq, s.snapshot.to_fields()) for s in snapshots]


def _lobby(pipeline: Pipeline) -> list[tuple[str, str]]:
    entries = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange(LOBBY_STREAM))
    return [(f["game_id"], f["engine_health_summary"]) for _, f in entries]


def test_right_after_commit_only_each_games_next_snapshot_is_appended(
    pipeline: Pipeline, engines: tuple[Engine, Engine], outbox: PostgresStreamOutbox
) -> None:
    first, second = _snapshot("g1", "running", "s1", 1, "1-0"), _snapshot("g1", "running", "s2", 2, "2-0")
    other = _snapshot("g2", "running", "t1", 1, "3-0")
    _commit_snapshots(engines, first, second, other)
    assert outbox.publish_committed(_entries(second, other)) == (1, ["g1"])  # g1's number 1 is not out yet
    assert outbox.backlog() == 2
    assert outbox.publish_committed(_entries(first, second)) == (2, [])
    assert outbox.publish_committed(_entries(first, second, other)) == (0, [])  # nothing twice
    assert _lobby(pipeline) == [("g2", "t1"), ("g1", "s1"), ("g1", "s2")]
    assert outbox.backlog() == 0


def test_the_relay_appends_what_is_past_each_mark_in_order_and_clears_the_rows_once_durable(
    pipeline: Pipeline, engines: tuple[Engine, Engine], outbox: PostgresStreamOutbox
) -> None:
    snapshots = [_snapshot("g1", "running", f"s{n}", n, f"{n}-0") for n in (1, 2, 3)]
    _commit_snapshots(engines, *snapshots)
    outbox.publish_committed(_entries(*snapshots[:1]))
    assert outbox.scan_page(0, 10) == OutboxPage(["g1"], 2, 0)
    assert outbox.relay_games(["g1"], wait_for_locks=False) == 2
    assert _lobby(pipeline) == [("g1", "s1"), ("g1", "s2"), ("g1", "s3")]
    assert (_outbox_rows(engines), outbox.backlog()) == (2, 0), "deleted through the checkpoint the first append began"
    assert outbox.scan_page(0, 10) == OutboxPage(["g1"], 0, 0), "the checkpoint moved to s3: due at once"
    assert outbox.relay_games(["g1"], wait_for_locks=False) == 0
    assert (_outbox_rows(engines), outbox.scan_page(0, 10)) == (0, OutboxPage([], 0, 0))
    assert outbox.publish_committed(_entries(*snapshots)) == (0, [])


def test_the_sweep_looks_at_rows_only_once_durable_after_and_leaves_appended_ones_until_their_checkpoint(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    client = redis.Redis.from_url(pipeline.redis_url, decode_responses=True)
    outbox = PostgresStreamOutbox(engines[1], client, pipeline.redis_url, LOBBY_OUTBOX_SPEC, durable_after_ms=1500)
    first, second = _snapshot("g1", "running", "s1", 1, "1-0"), _snapshot("g2", "running", "t1", 1, "2-0")
    committed = _commit_snapshots(engines, first, second)
    assert outbox.publish_committed([e for e in committed if e.game_id == "g1"]) == (1, [])
    assert outbox.scan_page(0, 10) == OutboxPage([], 0, 0), "young rows are their tasks' to append"
    time.sleep(1.6)
    page = outbox.scan_page(0, 1)
    assert (page.games, page.unappended) == (["g1"], 0), "the checkpoint the append started is due"
    page = outbox.scan_page(page.next_after, 1)
    assert (page.games, page.unappended) == (["g2"], 1), "never appended: the sweep appends it"
    assert outbox.scan_page(page.next_after, 1) == OutboxPage([], 0, 0), "the end of the outbox: next_after 0"
    assert outbox.relay_games(["g1", "g2"], wait_for_locks=False) == 1
    assert _outbox_rows(engines) == 1, "g1's rows deleted, g2's kept until its checkpoint is due"
    assert outbox.scan_page(0, 10) == OutboxPage([], 0, 0), "g2 appended, its checkpoint not due: no locked visit"
    assert _lobby(pipeline) == [("g1", "s1"), ("g2", "t1")]
    client.close()


def test_rows_the_fast_path_published_go_in_one_locked_visit_once_their_checkpoint_is_due(
    pipeline: Pipeline, engines: tuple[Engine, Engine], outbox: PostgresStreamOutbox
) -> None:
    committed = _commit_snapshots(engines, _snapshot("g1", "running", "s1", 1, "1-0"))
    assert outbox.publish_committed(committed) == (1, [])
    assert outbox.scan_page(0, 10) == OutboxPage(["g1"], 0, 0), "the append started a checkpoint, due at once here"
    assert outbox.relay_games(["g1"], wait_for_locks=False) == 0
    assert _outbox_rows(engines) == 0
    assert _lobby(pipeline) == [("g1", "s1")]


def test_a_game_with_steady_traffic_still_gets_its_durable_rows_deleted(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    client = redis.Redis.from_url(pipeline.redis_url, decode_responses=True)
    outbox = PostgresStreamOutbox(engines[1], client, pipeline.redis_url, LOBBY_OUTBOX_SPEC, durable_after_ms=500)
    started, seq = time.monotonic(), 0
    while time.monotonic() - started < 2.5:  # an append every 50 ms, a sweep after each
        seq += 1
        committed = _commit_snapshots(engines, _snapshot("g1", "running", f"s{seq}", seq, f"{seq}-0"))
        assert outbox.publish_committed(committed) == (1, [])
        relay(outbox, batch_games=100, time_budget_seconds=1)
        time.sleep(0.05)
    assert _outbox_rows(engines) < seq / 2, "the appends never kept the game's checkpoint from coming due"
    assert len(_lobby(pipeline)) == seq
    client.close()


def _outbox_rows(engines: tuple[Engine, Engine]) -> int:
    with engines[1].connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM gamemaster.lobby_outbox")).scalar_one())


def test_lock_creates_no_cursor_for_a_new_id_breaking_the_game_id_rule_but_serves_one_with_a_record(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    pipeline.add_games({"legacy_game.1": "running", "g1": "running"})
    with _uow(engines) as uow:
        locked = uow.lock(["new_game.1", "legacy_game.1", "g1", "g2"])
        uow.commit(ConsumerWrites(now_ms=1))
    assert sorted(locked.cursors) == ["g1", "g2", "legacy_game.1"]
    assert sorted(locked.records) == ["g1", "legacy_game.1"]
    assert sorted(pipeline.cursors()) == ["g1", "g2", "legacy_game.1"], "a junk id leaves no row behind"


def test_every_append_by_either_path_is_heard_with_its_source_entry_and_redis_time(
    pipeline: Pipeline, engines: tuple[Engine, Engine]
) -> None:
    heard: list[tuple[list[tuple[str, int, str]], int]] = []
    client = redis.Redis.from_url(pipeline.redis_url, decode_responses=True)
    outbox = PostgresStreamOutbox(
        engines[1],
        client,
        pipeline.redis_url,
        LOBBY_OUTBOX_SPEC,
        durable_after_ms=0,
        on_appended=lambda entries, at_ms: heard.append(
            ([(e.game_id, e.seq, e.source_entry_id) for e in entries], at_ms)
        ),
    )
    first, second = _snapshot("g1", "running", "s1", 1, "1-0"), _snapshot("g1", "running", "s2", 2, "2-0")
    committed = _commit_snapshots(engines, first, second)
    seconds, micros = client.time()
    before_ms = int(seconds) * 1000 + int(micros) // 1000

    assert outbox.publish_committed(committed[1:]) == (0, ["g1"])  # out of turn: nothing appended, nothing heard
    assert outbox.publish_committed(committed[:1]) == (1, [])
    assert outbox.relay_games(["g1"], wait_for_locks=True) == 1  # the second, by the relay, read from its row
    client.close()

    assert [entries for entries, _ in heard] == [[("g1", 1, "1-0")], [("g1", 2, "2-0")]]
    lobby_ids = [entry_id for entry_id, _ in cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange(LOBBY_STREAM))]
    # The script reads TIME just before its XADDs: the entries' ids are stamped at that time or a hair later.
    gaps = [int(entry_id.split("-")[0]) - at_ms for (_, at_ms), entry_id in zip(heard, lobby_ids, strict=True)]
    assert all(0 <= gap <= 2 for gap in gaps), gaps
    assert all(at_ms >= before_ms for _, at_ms in heard)
