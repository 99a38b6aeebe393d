"""The order repair looks at what was handed on since its last run, not at every game ever seen.

Real PostgreSQL and Redis, the adapter alone: the bridge's side (its offset,
progress and handed-on map) and the consumer's cursors are written here the
way the bridge and the per-event tasks write them.  Each run's cost is read
from ``galaxy_gm_order_repair_games_checked_total``; what it finds must be
what looking at every game would find.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
import redis
from prometheus_client import REGISTRY
from sqlalchemy import text

from galaxy_tasks.adapters.order_repair import PostgresRedisOrderRepairStore
from galaxy_tasks.adapters.redis.bridge_state import RedisBridgeStateStore
from galaxy_tasks.contract import HEALTH_EVENTS_BRIDGE_KEYS, HEALTH_EVENTS_STREAM
from galaxy_tasks.ports.gamemaster import StalledGame
from tests.support.pipeline import Pipeline, now_ms

pytestmark = pytest.mark.integration

KEYS = HEALTH_EVENTS_BRIDGE_KEYS


class World:
    """The stream, the bridge's saved state and the cursors of one test."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline
        self.raw = redis.Redis.from_url(pipeline.redis_url)
        self.store = self.new_store()

    def new_store(self) -> PostgresRedisOrderRepairStore:
        """A store as one run of the repair task builds it."""
        return PostgresRedisOrderRepairStore(
            self.p.engine,
            self.p.r,
            self.raw,
            stream=HEALTH_EVENTS_STREAM,
            keys=KEYS,
            redis_url=self.p.redis_url,
            floor_ttl_ms=30_000,
            floor_count_limit=100_000,
        )

    def hand_on(self, *games: str | bytes) -> dict[str, str]:
        """XADD one entry per game and save it as handed on, as the bridge does; the new ids by game."""
        ids: dict[str, str] = {}
        for game in games:
            entry_id = str(self.p.r.xadd(HEALTH_EVENTS_STREAM, {"game_id": game, "event_type": "probe_failed"}))
            if isinstance(game, str):
                ids[game] = entry_id
        offset = str(self.p.r.xrevrange(HEALTH_EVENTS_STREAM, count=1)[0][0])  # type: ignore[index]
        added = int(self.p.r.xinfo_stream(HEALTH_EVENTS_STREAM)["entries-added"])
        if ids:
            self.p.r.hset(KEYS.last_by_partition, mapping=dict(ids.items()))
        self.p.r.set(KEYS.offset, offset)
        self.p.r.hset(KEYS.progress, mapping={"offset": offset, "entries_through_offset": added})
        return ids

    def apply(self, ids: Mapping[str, str], *, quiet: bool = True) -> None:
        """Move the games' cursors to these entries (``quiet``: an hour ago, else just now)."""
        with self.p.engine.begin() as conn:
            for game, entry_id in ids.items():
                conn.execute(
                    text(
                        "INSERT INTO gamemaster.health_event_cursors (game_id, last_entry_id, updated_at) "
                        "VALUES (:g, :e, now() - make_interval(secs => :ago)) "
                        "ON CONFLICT (game_id) DO UPDATE SET last_entry_id = :e, updated_at = EXCLUDED.updated_at"
                    ),
                    {"g": game, "e": entry_id, "ago": 3600 if quiet else 0},
                )

    def run(self, *, cutoff_ms: int | None = None) -> list[StalledGame]:
        """One repair run's look: the floor first, then the stalled games (as ``repair_stalled_games``)."""
        store = self.new_store()
        store.protect_unapplied()
        return store.stalled_games(now_ms() if cutoff_ms is None else cutoff_ms, 200)


@pytest.fixture
def world(pipeline: Pipeline) -> Iterator[World]:
    w = World(pipeline)
    yield w
    w.raw.close()


def checked(survey: str) -> float:
    return REGISTRY.get_sample_value("galaxy_gm_order_repair_games_checked_total", {"survey": survey}) or 0.0


class Checked:
    """How many games the runs inside looked at, per kind of survey."""

    def __enter__(self) -> Checked:
        self._before = {s: checked(s) for s in ("full", "incremental")}
        return self

    def __exit__(self, *exc: object) -> None:
        self.full = checked("full") - self._before["full"]
        self.incremental = checked("incremental") - self._before["incremental"]


def test_a_run_checks_only_the_games_handed_on_since_the_last_run(world: World) -> None:
    caught_up = world.hand_on(*(f"old-{n}" for n in range(300)))
    world.apply(caught_up)
    with Checked() as first:
        assert world.run() == []
    assert (first.full, first.incremental) == (300, 0)  # the first run has nothing to start from

    applied = world.hand_on("applied")
    lost = world.hand_on("lost")  # handed on; its message never arrives
    world.apply(applied)
    with Checked() as second:
        stalled = world.run()
    assert (second.full, second.incremental) == (0, 2)
    assert stalled == [StalledGame("lost", None, lost["lost"], "behind")]


def test_a_game_caught_up_at_the_last_look_is_found_when_its_next_entry_is_lost(world: World) -> None:
    first = world.hand_on("g")
    world.apply(first)
    assert world.run() == []
    second = world.hand_on("g", "other")
    world.apply({"other": second["other"]})
    assert world.run() == [StalledGame("g", first["g"], second["g"], "behind")]


def test_a_game_behind_but_not_quiet_yet_is_found_by_a_later_run_with_nothing_new_handed_on(world: World) -> None:
    old = world.hand_on("g")
    world.apply(old)
    world.run()
    new = world.hand_on("g")
    world.apply({"g": old["g"]}, quiet=False)  # its cursor moved a moment ago: not stalled yet
    assert world.run(cutoff_ms=now_ms() - 5_000) == []
    world.apply({"g": old["g"]})  # now it has been quiet for long
    with Checked() as later:
        assert world.run() == [StalledGame("g", old["g"], new["g"], "behind")]
    assert (later.full, later.incremental) == (0, 1)  # found among the suspects, not by reading everything


def test_after_a_replay_the_next_run_checks_every_game(world: World) -> None:
    ids = world.hand_on("a", "b")
    world.apply(ids)
    world.run()
    world.p.r.set(KEYS.lease, "bridge-1")
    world.p.r.set(KEYS.replay_request, "0-0")
    assert RedisBridgeStateStore(world.p.r, KEYS, "bridge-1", world.p.redis_url).apply_replay_request() == "0-0"
    world.hand_on("c")  # the replayed bridge moves on past where the last run had looked
    with Checked() as after:
        world.run()
    assert (after.full, after.incremental) == (3, 0)


def test_a_replay_that_comes_while_a_run_is_looking_makes_the_next_run_check_every_game(world: World) -> None:
    ids = world.hand_on("a", "b")
    world.apply(ids)
    world.run()
    looking = world.new_store()
    looking.protect_unapplied()  # the run has read the scan and the bridge's offset
    world.p.r.set(KEYS.lease, "bridge-1")
    world.p.r.set(KEYS.replay_request, "0-0")
    RedisBridgeStateStore(world.p.r, KEYS, "bridge-1", world.p.redis_url).apply_replay_request()
    looking.stalled_games(now_ms(), 200)
    world.hand_on("c")  # the bridge is past that run's offset before the next run
    with Checked() as after:
        world.run()
    assert (after.full, after.incremental) == (3, 0)


def test_entries_trimmed_before_a_run_read_them_make_it_check_every_game(world: World) -> None:
    world.apply(world.hand_on("a"))
    world.run()
    lost = world.hand_on("lost")
    newest = world.hand_on("b")
    # gone unread, as when the repair stopped for longer than its floor lives
    world.p.r.xtrim(HEALTH_EVENTS_STREAM, minid=newest["b"], approximate=False)
    with Checked() as after:
        stalled = world.run()
    assert after.full == 3
    assert sorted(stalled, key=lambda g: g.game_id) == [
        StalledGame("b", None, newest["b"], "behind"),
        StalledGame("lost", None, lost["lost"], "behind", gap=True),  # its entry is gone: loud, then on
    ]


def test_the_floor_keeps_what_was_handed_on_after_the_last_look_counted_by_the_bridge(world: World) -> None:
    ids = world.hand_on("a", "b")
    world.apply(ids)
    world.run()
    floor = world.p.r.hgetall(KEYS.repair_floor)
    assert floor == {"id": ids["b"], "entries_through": "2"}
    behind = world.hand_on("c")
    newer = world.hand_on("d")
    world.apply({"d": newer["d"], "c": ids["a"]}, quiet=False)  # c's cursor names an older entry
    world.run(cutoff_ms=now_ms() - 60_000)
    assert world.p.r.hgetall(KEYS.repair_floor)["id"] == ids["a"]  # c is behind: the entry its cursor names
    assert world.p.r.hget(KEYS.repair_scan, "suspects") == f'["{next(iter(behind))}"]'


def test_bytes_that_are_no_game_id_and_an_unreadable_scan_are_read_past(world: World) -> None:
    world.apply(world.hand_on("a"))
    world.run()
    lost = world.hand_on(b"\xff\xfe", "lost")
    assert world.run() == [StalledGame("lost", None, lost["lost"], "behind")]
    world.p.r.hset(KEYS.repair_scan, "suspects", "not a list of games")
    with Checked() as after:
        assert world.run() == [StalledGame("lost", None, lost["lost"], "behind")]
    assert after.full == 2
