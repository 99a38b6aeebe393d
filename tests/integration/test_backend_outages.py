"""Backend outages in the middle of a stream: nothing lost, nothing doubled, caught up unaided.

The issue's requirement, with real processes and real servers: Redis restarted,
or PostgreSQL refusing connections for a few seconds, while the pipeline is
applying ``runtime:health_events`` entries.  Each test runs its own servers (so
stopping one harms no other test run), two pool workers, the long-running
worker and beat; it feeds a seeded random stream of all seven event types over
20 games, starts the outage while entries are being applied, feeds the rest,
and then — without touching a single Celery process — waits for the pipeline
to settle and for every health-event message to leave the broker (late
redeliveries included).  The rows and each game's ``gm:lobby_events`` snapshot
sequence must then be exactly those of the one-at-a-time reference model: a
lost entry leaves a row or a sequence different, a doubled one shows as an
extra snapshot.
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc

from galaxy_tasks.adapters.postgres.migrate import upgrade
from galaxy_tasks.contract import HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.errors import MalformedEntry
from galaxy_tasks.domain.gamemaster.entries import decode_health_entry
from galaxy_tasks.domain.health_events import HEALTH_EVENT_FIELDS
from galaxy_tasks.domain.stream_fields import decode_entry_fields
from galaxy_tasks.queues import Queue
from galaxy_tasks.task_names import TaskName
from galaxy_tasks.testing.cluster import Cluster, wait_until
from galaxy_tasks.testing.seed001 import ReferenceGameMaster, RefRecord
from tests.support.events import EVENT_TYPES
from tests.support.pipeline import Pipeline, now_ms
from tests.support.private_services import PrivatePostgres, PrivateRedis

pytestmark = pytest.mark.integration

GAMES = 20
CURRENT_TURN = 3
SETTLE_TIMEOUT_SECONDS = 120
REDIS_DOWN_SECONDS = 3.0
POSTGRES_DOWN_SECONDS = 4.0


# ------------------------------------------------------------------------------------ the stream


def game_statuses() -> dict[str, str]:
    """20 games, running except two whose status belongs to other flows (never overwritten)."""
    statuses = dict.fromkeys((f"g{i:02d}" for i in range(GAMES)), "running")
    statuses["g18"] = "generation_in_progress"
    statuses["g19"] = "engine_unreachable"
    return statuses


def event_stream(seed: int, count: int, game_ids: Sequence[str]) -> list[dict[str, str]]:
    """``count`` valid entries of all seven types, in a seeded random order over ``game_ids``."""
    rng = random.Random(seed)
    kinds = list(EVENT_TYPES)  # each type at least once
    kinds += [rng.choice(EVENT_TYPES) for _ in range(count - len(kinds))]
    rng.shuffle(kinds)
    return [event_fields(rng, rng.choice(game_ids), kind) for kind in kinds]


def event_fields(rng: random.Random, game_id: str, kind: str) -> dict[str, str]:
    """The fields the Runtime Manager publishes (SPEC §3), ``details`` as in its table."""
    details_by_kind: dict[str, dict[str, Any]] = {
        "container_started": {"image_ref": "galaxy/engine:test"},
        "container_exited": {"exit_code": rng.choice([0, 1, 137])},
        "container_oom": {"exit_code": 137},
        "container_disappeared": rng.choice([{}, {"reason": "reconciler: container not found"}]),
        "inspect_unhealthy": {"restart_count": rng.randint(1, 5), "state": "restarting", "health": "unhealthy"},
        "probe_failed": {"consecutive_failures": 3, "last_error": "connection refused"},
        "probe_recovered": {"prior_failures": rng.randint(3, 6)},
    }
    return {
        "game_id": game_id,
        "container_id": f"c-{game_id}",
        "event_type": kind,
        "occurred_at_ms": str(now_ms()),
        "details": json.dumps(details_by_kind[kind]),
    }


def damaged(rng: random.Random, fields: dict[str, str]) -> dict[Any, Any]:
    """``fields`` with bytes that are not text somewhere — in an unknown field or a known one — game id kept."""
    out: dict[Any, Any] = dict(fields)
    roll = rng.randrange(4)
    if roll == 0:
        out[bytes([0xFF, rng.randrange(256)])] = bytes(rng.randrange(256) for _ in range(16))  # ignored: applies
    elif roll == 1:
        out["details"] = b"\xe2\x82"  # cut mid-character: malformed
    elif roll == 2:
        out["event_type"] = fields["event_type"] + "\x00"  # NUL: malformed
    else:
        out["container_id"] = b"\xff" + fields["container_id"].encode()  # malformed
    return out


@dataclass
class Scenario:
    """The stream of one test, split around the outage, and what one-at-a-time makes of it."""

    statuses: dict[str, str]
    before: list[dict[str, str]]
    during: list[dict[str, str]]
    after: list[dict[str, str]]
    reference: ReferenceGameMaster

    @classmethod
    def build(cls, seed: int, before: int, during: int, after: int, *, hostile: float = 0.0) -> Scenario:
        """``hostile``: the share of entries damaged as a careless producer would (their game id intact)."""
        statuses = game_statuses()
        stream: list[dict[str, Any]] = event_stream(seed, before + during + after, sorted(statuses))
        rng = random.Random(seed)
        stream = [damaged(rng, fields) if rng.random() < hostile else fields for fields in stream]
        reference = ReferenceGameMaster(
            records={g: RefRecord(s, current_turn=CURRENT_TURN) for g, s in statuses.items()}
        )
        for raw in stream:
            fields = decode_entry_fields(raw, HEALTH_EVENT_FIELDS)  # as the bridge reads it
            try:
                decode_health_entry(fields)
            except MalformedEntry:
                continue  # counted and skipped: no effect on rows or snapshots
            reference.handle(fields)
        return cls(statuses, stream[:before], stream[before : before + during], stream[before + during :], reference)

    @property
    def stream(self) -> list[dict[str, str]]:
        return [*self.before, *self.during, *self.after]

    def expected_rows(self) -> dict[str, tuple[str, str, int]]:
        return {g: (r.status, r.engine_health, r.current_turn) for g, r in self.reference.records.items()}

    def expected_snapshots(self) -> dict[str, list[tuple[str, str, str]]]:
        return {g: s for g, s in self.reference.snapshots.items() if s}


# ------------------------------------------------------------------------------- feeding, settling


def last_entry_by_game(entry_ids: Sequence[str], entries: Sequence[dict[str, str]]) -> dict[str, str]:
    return {fields["game_id"]: entry_id for entry_id, fields in zip(entry_ids, entries, strict=True)}


def applied_entries(pipe: Pipeline, entry_ids: Sequence[str], entries: Sequence[dict[str, str]]) -> int:
    """How many of ``entries`` are applied, read from the per-game cursors in PostgreSQL."""
    by_game: dict[str, list[str]] = {}
    for entry_id, fields in zip(entry_ids, entries, strict=True):
        by_game.setdefault(fields["game_id"], []).append(entry_id)
    cursors = pipe.cursors()
    applied = 0
    for game_id, ids in by_game.items():
        cursor = cursors.get(game_id)
        if cursor is None:
            continue
        if cursor not in ids:
            raise AssertionError(f"the cursor of {game_id} is {cursor}, none of its entries")
        applied += ids.index(cursor) + 1
    return applied


def xadd_paced(pipe: Pipeline, entries: Sequence[dict[str, str]], *, batch: int = 10, pause: float = 0.03) -> list[str]:
    """XADD in small batches, as a producer trickling events would."""
    ids: list[str] = []
    for start in range(0, len(entries), batch):
        ids.extend(pipe.xadd_health(entries[start : start + batch]))
        time.sleep(pause)
    return ids


def feed_until_mid_stream(pipe: Pipeline, entries: Sequence[dict[str, str]]) -> list[str]:
    """XADD ``entries`` so that the pipeline is certainly busy with them when this returns.

    The first half trickles in until the bridge has stored an offset and a
    good part of it is applied; the second half is one burst, which cannot be
    applied yet.  The caller starts the outage right away.
    """
    half = len(entries) // 2
    ids = xadd_paced(pipe, entries[:half])
    wait_until(
        lambda: pipe.offset() is not None and applied_entries(pipe, ids, entries[:half]) >= half // 2,
        timeout=30,
        what="the bridge to store an offset and the pools to apply a part of the stream",
    )
    ids.extend(pipe.xadd_health(entries[half:]))
    return ids


def start_outage_mid_stream(
    pipe: Pipeline, entry_ids: Sequence[str], entries: Sequence[dict[str, str]], stop_backend: Callable[[], None]
) -> None:
    """Stop the backend right away, having checked the pipeline is in the middle of ``entries``."""
    applied = applied_entries(pipe, entry_ids, entries)
    stop_backend()
    print(f"outage started with {applied} of {len(entries)} entries applied")
    assert 0 < applied < len(entries), "the outage must start while entries are being applied"


def health_messages_in_broker(pipe: Pipeline) -> list[list[str]]:
    """The entry ids of each health-event task message still queued, or delivered and not acked.

    Kombu's Redis transport keeps a queue as a list named after it and every
    delivered, unacked message in the ``unacked`` hash as
    ``[payload, exchange, routing_key]``; an unacked message comes back after
    the visibility timeout.  A payload's body is ``[args, kwargs, embed]``.
    """
    queue = Queue.GM_HEALTH_EVENTS.value
    payloads: list[dict[str, Any]] = []
    for key in pipe.r.scan_iter(match=f"{queue}*"):
        raw_messages: list[str] = pipe.r.lrange(key, 0, -1)  # type: ignore[assignment]
        payloads.extend(json.loads(raw) for raw in raw_messages)
    unacked: dict[str, str] = pipe.r.hgetall("unacked")  # type: ignore[assignment]
    for raw in unacked.values():
        payload, _exchange, routing_key = json.loads(raw)
        if routing_key == queue:
            payloads.append(payload)
    messages: list[list[str]] = []
    for payload in payloads:
        body = payload["body"]
        if payload.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        if payload["headers"]["task"] == TaskName.GM_APPLY_HEALTH_EVENTS_CHUNK.value:
            messages.append([str(item[0]) for item in args[0]])
        else:
            messages.append([str(args[0])])
    return messages


def wait_quiescent(pipe: Pipeline, scenario: Scenario, entry_ids: list[str]) -> None:
    """Settled (offset at the end, every cursor at its game's last entry, outbox empty), then no
    health-event message left in the broker, so that no late duplicate can appear afterwards;
    both within ``SETTLE_TIMEOUT_SECONDS`` of the last XADD."""
    last_by_game = last_entry_by_game(entry_ids, scenario.stream)
    started = time.monotonic()
    try:
        pipe.wait_settled(entry_ids, last_by_game, timeout=SETTLE_TIMEOUT_SECONDS)
        settled = time.monotonic() - started
        wait_until(
            lambda: not health_messages_in_broker(pipe),
            timeout=max(SETTLE_TIMEOUT_SECONDS - settled, 15),
            what="every health-event message to be acked (redeliveries done)",
            interval=0.2,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{progress_report(pipe, scenario, entry_ids)}") from None
    pipe.wait_settled(entry_ids, last_by_game, timeout=10)
    print(f"settled {settled:.1f}s after the last XADD, broker drained after {time.monotonic() - started:.1f}s")


def progress_report(pipe: Pipeline, scenario: Scenario, entry_ids: list[str]) -> str:
    """Where a pipeline that did not settle stands, and which entries the broker no longer holds."""
    in_broker: set[str] = set()
    for _ in range(5):  # a message being consumed is briefly in neither the queue nor ``unacked``
        in_broker.update(entry_id for message in health_messages_in_broker(pipe) for entry_id in message)
        time.sleep(0.5)
    cursors = pipe.cursors()  # after the samples: what was applied meanwhile does not count as lost
    by_game: dict[str, list[str]] = {}
    for entry_id, fields in zip(entry_ids, scenario.stream, strict=True):
        by_game.setdefault(fields["game_id"], []).append(entry_id)
    unapplied: list[str] = []
    for game_id, ids in by_game.items():
        cursor = cursors.get(game_id)
        unapplied.extend(ids[ids.index(cursor) + 1 :] if cursor in ids else ids)
    nowhere = sorted(set(unapplied) - in_broker, key=lambda e: tuple(int(p) for p in e.split("-")))
    return (
        f"applied {len(entry_ids) - len(unapplied)} of {len(entry_ids)} entries; "
        f"offset {pipe.offset()} (last entry {entry_ids[-1]}); outbox {pipe.outbox_size()}; "
        f"{len(in_broker)} entries in health-event messages queued or unacked over 2.5 s; "
        f"unapplied entries in no broker message all that time (handoff lost): {nowhere}; "
        f"games behind (cursor, last entry): "
        f"{ {g: (cursors.get(g), ids[-1]) for g, ids in by_game.items() if cursors.get(g) != ids[-1]} }"
    )


def assert_same_as_one_at_a_time(pipe: Pipeline, scenario: Scenario, entry_ids: list[str]) -> None:
    assert pipe.rows(scenario.statuses) == scenario.expected_rows()
    assert pipe.lobby_snapshots() == scenario.expected_snapshots()
    assert pipe.offset() == entry_ids[-1]
    assert pipe.outbox_size() == 0


def assert_no_process_died(cluster: Cluster) -> None:
    """Recovering by itself includes every Celery process still being there to work."""
    dead = {p.name: p for p in cluster.processes if not p.alive()}
    reasons = {
        name: [line for line in p.log_text().splitlines() if "CRITICAL" in line or "Unrecoverable" in line][-3:]
        for name, p in dead.items()
    }
    assert not dead, f"Celery processes died during the outage (the test restarts none): {reasons}"


# ------------------------------------------------------------------------------------ fixtures


def start_cluster(cluster: Cluster) -> None:
    cluster.pool_worker("pool-a", concurrency=2)
    cluster.pool_worker("pool-b", concurrency=2)
    cluster.long_running_worker()
    cluster.beat()


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this test alone (initdb), so that it can be stopped and started."""
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        yield server
    finally:
        if server.log_path.exists():
            shutil.copy(server.log_path, tmp_path / "postgres-server.log")
        print(f"===== postgres server log (tail) =====\n{server.log_tail()}")
        server.destroy()


@pytest.fixture
def postgres_outage_pipeline(
    private_postgres: PrivatePostgres, private_redis: PrivateRedis, tmp_path: Path
) -> Iterator[Pipeline]:
    """The private PostgreSQL, migrated; streams, offsets and broker on a private Redis too.

    Not a shared Redis (``GALAXY_TEST_REDIS_URL``): other test runs may flush it at any
    time, which would take the stream, the offset and the broker queues away mid-test.
    """
    upgrade(private_postgres.url)
    pipe = Pipeline(redis_url=private_redis.url, database_url=private_postgres.url, metrics_dir=tmp_path / "metrics")
    pipe.metrics_dir.mkdir()
    try:
        yield pipe
    finally:
        pipe.close()


def _cluster(pipe: Pipeline, tmp_path: Path) -> Iterator[Cluster]:
    """The Celery processes of the test, ended by pid whatever happens; their log tails printed."""
    cluster = Cluster(env=pipe.env, log_dir=tmp_path / "logs")
    cluster.log_dir.mkdir()
    try:
        start_cluster(cluster)
        yield cluster
    finally:
        cluster.stop_all()
        for log in sorted(cluster.log_dir.glob("*.log")):
            print(f"===== {log.name} (tail) =====\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture
def redis_outage_cluster(redis_outage_pipeline: Pipeline, tmp_path: Path) -> Iterator[Cluster]:
    yield from _cluster(redis_outage_pipeline, tmp_path)


@pytest.fixture
def postgres_outage_cluster(postgres_outage_pipeline: Pipeline, tmp_path: Path) -> Iterator[Cluster]:
    yield from _cluster(postgres_outage_pipeline, tmp_path)


# ------------------------------------------------------------------------------------ the tests


def test_redis_restart_mid_stream_loses_nothing_doubles_nothing_and_catches_up_unaided(
    redis_outage_pipeline: Pipeline, redis_outage_cluster: Cluster, private_redis: PrivateRedis
) -> None:
    pipe = redis_outage_pipeline
    scenario = Scenario.build(seed=20_260_501, before=240, during=0, after=160)
    pipe.add_games(scenario.statuses, current_turn=CURRENT_TURN)

    entry_ids = feed_until_mid_stream(pipe, scenario.before)
    start_outage_mid_stream(pipe, entry_ids, scenario.before, private_redis.stop)  # SIGTERM: AOF fsynced, exit
    time.sleep(REDIS_DOWN_SECONDS)
    private_redis.start()  # same port, same data directory
    assert int(pipe.r.xlen(HEALTH_EVENTS_STREAM)) == len(entry_ids), "the AOF must keep every acknowledged XADD"

    entry_ids.extend(pipe.xadd_health(scenario.after))
    wait_quiescent(pipe, scenario, entry_ids)

    assert_same_as_one_at_a_time(pipe, scenario, entry_ids)
    assert_no_process_died(redis_outage_cluster)


def test_postgres_refusing_connections_mid_stream_with_hostile_entries_loses_and_skips_no_valid_entry(
    postgres_outage_pipeline: Pipeline, postgres_outage_cluster: Cluster, private_postgres: PrivatePostgres
) -> None:
    pipe = postgres_outage_pipeline
    scenario = Scenario.build(seed=20_260_502, before=200, during=100, after=100, hostile=0.2)
    pipe.add_games(scenario.statuses, current_turn=CURRENT_TURN)

    entry_ids = feed_until_mid_stream(pipe, scenario.before)
    start_outage_mid_stream(pipe, entry_ids, scenario.before, private_postgres.stop)  # fast: sessions ended
    down_since = time.monotonic()
    with pytest.raises(sqlalchemy.exc.OperationalError), pipe.engine.connect():
        pass  # the premise: PostgreSQL refuses connections now
    entry_ids.extend(xadd_paced(pipe, scenario.during, pause=0.2))  # events keep coming during the outage
    time.sleep(max(POSTGRES_DOWN_SECONDS - (time.monotonic() - down_since), 0))
    private_postgres.start()

    entry_ids.extend(pipe.xadd_health(scenario.after))
    wait_quiescent(pipe, scenario, entry_ids)

    assert_same_as_one_at_a_time(pipe, scenario, entry_ids)
    assert pipe.offset() == entry_ids[-1], "the stored offset is the id of the last entry"
    assert_no_process_died(postgres_outage_cluster)
