"""What one order-repair run costs when the Game Master has seen many games (issue 12).

The repair runs every ``GALAXY_ORDER_REPAIR_INTERVAL_SECONDS`` on the
long-running worker, whose threads also run the bridges, so its CPU is taken
from the bridge's interpreter.  This fills a fresh database and Redis with
``--games`` games whose last handed-on entry is applied (the bridge's map, its
offset and progress, the cursors — as the bridge and the per-event tasks
write them), then times, in the same run, a first run (it has no scan to start
from, so it checks every game: what every run cost before the repair read
incrementally) and ``--runs`` later runs, each after ``--new`` more entries
were handed on and applied.  Reports; never fails the build::

    .venv/bin/python bench/order_repair_cost.py [--games 400000] [--new 30000] [--runs 3]

Redis database 14 of ``127.0.0.1:6379`` (flushed) and a fresh PostgreSQL
database (dropped at the end).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, cast

import redis
from sqlalchemy import Engine, create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stores import database_url_for
from galaxy_tasks.adapters.order_repair import PostgresRedisOrderRepairStore
from galaxy_tasks.adapters.postgres.migrate import upgrade
from galaxy_tasks.contract import HEALTH_EVENTS_BRIDGE_KEYS, HEALTH_EVENTS_STREAM
from galaxy_tasks.testing.services import drop_database

ADMIN_URL = os.environ.get("GALAXY_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("GALAXY_BENCH_REPAIR_REDIS_URL", "redis://127.0.0.1:6379/14")
KEYS = HEALTH_EVENTS_BRIDGE_KEYS
PAGE = 5000
MAXLEN = 100_000


def hand_on_and_apply(r: redis.Redis, engine: Engine, games: list[str]) -> None:
    """XADD one entry per game, save it as handed on (map, offset, progress) and move its cursor there."""
    for start in range(0, len(games), PAGE):
        page = games[start : start + PAGE]
        pipe = r.pipeline(transaction=False)
        for game in page:
            fields = {"game_id": game, "container_id": "c", "event_type": "container_exited", "details": "{}"}
            pipe.xadd(HEALTH_EVENTS_STREAM, cast(Any, fields), maxlen=MAXLEN, approximate=False)
        ids = [str(entry_id) for entry_id in pipe.execute()]
        r.hset(KEYS.last_by_partition, mapping=dict(zip(page, ids, strict=True)))
        added = int(cast(Any, r.xinfo_stream(HEALTH_EVENTS_STREAM))["entries-added"])
        r.set(KEYS.offset, ids[-1])
        r.hset(KEYS.progress, mapping={"offset": ids[-1], "entries_through_offset": added})
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO gamemaster.health_event_cursors (game_id, last_entry_id, updated_at) "
                    "SELECT g, e, now() - interval '1 hour' "
                    "FROM unnest(CAST(:g AS text[]), CAST(:e AS text[])) AS v(g, e)"
                ),
                {"g": page, "e": ids},
            )


def one_run(engine: Engine, r: redis.Redis, raw: redis.Redis) -> tuple[float, float, int]:
    """A repair run's look (floor, then stalled games) as the task makes it: wall s, CPU s, games stalled."""
    store = PostgresRedisOrderRepairStore(
        engine,
        r,
        raw,
        stream=HEALTH_EVENTS_STREAM,
        keys=KEYS,
        redis_url=REDIS_URL,
        floor_ttl_ms=30_000,
        floor_count_limit=MAXLEN,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    store.protect_unapplied()
    stalled = store.stalled_games(int(time.time() * 1000), 200)
    return time.perf_counter() - wall, time.process_time() - cpu, len(stalled)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--games", type=int, default=400_000, help="games seen before the first run")
    p.add_argument("--new", type=int, default=30_000, help="entries handed on between two runs")
    p.add_argument("--runs", type=int, default=3, help="runs after the first")
    args = p.parse_args()
    database_url = database_url_for(ADMIN_URL, "repair")
    upgrade(database_url)
    engine = create_engine(database_url)
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    raw = redis.Redis.from_url(REDIS_URL)
    try:
        r.flushdb()
        print(f"filling: {args.games} games, each with its last handed-on entry applied", flush=True)
        hand_on_and_apply(r, engine, [f"seen-{n}" for n in range(args.games)])
        wall, first_cpu, stalled = one_run(engine, r, raw)
        print(f"first run (checks every game):  wall {wall:6.3f} s  CPU {first_cpu:6.3f} s  stalled {stalled}")
        later: list[float] = []
        for run in range(args.runs):
            hand_on_and_apply(r, engine, [f"new-{run}-{n}" for n in range(args.new)])
            wall, cpu, stalled = one_run(engine, r, raw)
            later.append(cpu)
            print(f"after {args.new} new entries:     wall {wall:6.3f} s  CPU {cpu:6.3f} s  stalled {stalled}")
        later.sort()
        print(f"median CPU of a later run: {later[len(later) // 2]:.3f} s (the first run's: {first_cpu:.3f} s)")
    finally:
        r.close()
        raw.close()
        engine.dispose()
        drop_database(database_url, ADMIN_URL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
