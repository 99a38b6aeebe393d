"""A test's handle on one isolated Game Master pipeline: its database, its Redis, its metrics.

Reads and writes the real stores the way the Runtime Manager and the Lobby
would (XADD to ``runtime:health_events``, XRANGE of ``gm:lobby_events``,
rows of ``gamemaster.runtime_records``) and waits for the pipeline to settle.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import Engine, create_engine, text

from galaxy_tasks.contract import HEALTH_EVENTS_BRIDGE_KEYS, HEALTH_EVENTS_STREAM, LOBBY_STREAM
from galaxy_tasks.testing.cluster import REPO, wait_until


@dataclass
class Pipeline:
    redis_url: str
    database_url: str
    metrics_dir: Path
    broker_url: str = ""

    def __post_init__(self) -> None:
        self.r: redis.Redis = redis.Redis.from_url(self.redis_url, decode_responses=True, socket_timeout=5)
        self.engine: Engine = create_engine(self.database_url, pool_pre_ping=True)

    @property
    def env(self) -> dict[str, str]:
        return {
            "GALAXY_REDIS_URL": self.redis_url,
            "GALAXY_BROKER_URL": self.broker_url or self.redis_url,
            "GALAXY_DATABASE_URL": self.database_url,
            "GALAXY_METRICS_DIR": str(self.metrics_dir),
        }

    def close(self) -> None:
        self.r.close()
        self.engine.dispose()

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``galaxy-tasks ARGS`` against this pipeline, as an operator runs it (its output captured)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GALAXY_")}
        env.update(self.env)
        command = [str(Path(sys.executable).with_name("galaxy-tasks")), *args]
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)

    def send_tasks(self, name: str, many_args: Iterable[Sequence[object]]) -> None:
        """Send one task per argument list to *this* pipeline's broker.

        The test process's own Celery app reads its broker URL from the environment of
        the test run, not this pipeline's; a task sent through it would land elsewhere.
        """
        from galaxy_tasks.celery_app import app

        with app.connection_for_write(self.env["GALAXY_BROKER_URL"]) as connection:
            for args in many_args:
                app.send_task(name, args=list(args), connection=connection, ignore_result=True)

    # --- the Game Master's rows -------------------------------------------------------------
    def add_games(self, statuses: Mapping[str, str], current_turn: int = 0) -> None:
        with self.engine.begin() as conn:
            for game_id, status in statuses.items():
                conn.execute(
                    text("INSERT INTO gamemaster.runtime_records (game_id, status, current_turn) VALUES (:g, :s, :t)"),
                    {"g": game_id, "s": status, "t": current_turn},
                )

    def add_running_engine(self, game_id: str, container_id: str, endpoint: str = "") -> None:
        """The Runtime Manager's record of a game whose engine runs in ``container_id`` (as a start job leaves it)."""
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO rtmanager.runtime_records (game_id, status, current_container_id, engine_endpoint) "
                    "VALUES (:g, 'running', :c, :e)"
                ),
                {"g": game_id, "c": container_id, "e": endpoint},
            )

    def rows(self, game_ids: Iterable[str] | None = None) -> dict[str, tuple[str, str, int]]:
        query = "SELECT game_id, status, engine_health, current_turn FROM gamemaster.runtime_records"
        with self.engine.connect() as conn:
            result = conn.execute(text(query)).all()
        wanted = None if game_ids is None else set(game_ids)
        return {
            row.game_id: (row.status, row.engine_health, row.current_turn)
            for row in result
            if wanted is None or row.game_id in wanted
        }

    def parked_count(self, game_id: str) -> int:
        """Entries of the game waiting in the parking for their predecessor."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM gamemaster.health_event_parked WHERE game_id = :g"), {"g": game_id}
                ).scalar_one()
            )

    def cursors(self) -> dict[str, str | None]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT game_id, last_entry_id FROM gamemaster.health_event_cursors")).all()
        return {row.game_id: row.last_entry_id for row in rows}

    def outbox_size(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM gamemaster.lobby_outbox")).scalar_one())

    # --- the streams --------------------------------------------------------------------------
    def xadd_health(self, entries: Iterable[Mapping[str, str]]) -> list[str]:
        pipe = self.r.pipeline(transaction=False)
        for fields in entries:
            values: dict[Any, Any] = dict(fields)
            pipe.xadd(HEALTH_EVENTS_STREAM, values)
        return [str(entry_id) for entry_id in pipe.execute()]

    def health_kinds(self, game_id: str) -> list[str]:
        """The ``event_type`` of the game's ``runtime:health_events`` entries, in stream order."""
        entries: list[tuple[str, dict[str, str]]] = self.r.xrange(HEALTH_EVENTS_STREAM)  # type: ignore[assignment]
        return [fields["event_type"] for _, fields in entries if fields.get("game_id") == game_id]

    def offset(self) -> str | None:
        value = self.r.get(HEALTH_EVENTS_BRIDGE_KEYS.offset)
        return None if value is None else str(value)

    def lobby_snapshots(self, game_ids: Iterable[str] | None = None) -> dict[str, list[tuple[str, str, str]]]:
        wanted = None if game_ids is None else set(game_ids)
        out: dict[str, list[tuple[str, str, str]]] = {}
        entries: list[tuple[str, dict[str, str]]] = self.r.xrange(LOBBY_STREAM)  # type: ignore[assignment]
        for _entry_id, fields in entries:
            game_id = fields["game_id"]
            if wanted is not None and game_id not in wanted:
                continue
            assert fields["event_type"] == "runtime_snapshot_update"
            assert fields["player_turn_stats"] == "[]"
            assert int(fields["occurred_at_ms"]) > 0
            out.setdefault(game_id, []).append(
                (fields["runtime_status"], fields["engine_health_summary"], fields["current_turn"])
            )
        return out

    # --- settling -----------------------------------------------------------------------------
    def wait_settled(self, entry_ids: list[str], games_last_entry: Mapping[str, str], timeout: float = 60) -> None:
        """Wait until the bridge passed ``entry_ids[-1]``, every game's cursor reached its
        last entry and the Lobby outbox is empty."""
        last = entry_ids[-1] if entry_ids else None

        def settled() -> bool:
            if last is not None and self.offset() != last:
                return False
            cursors = self.cursors()
            if any(cursors.get(g) != e for g, e in games_last_entry.items()):
                return False
            return self.outbox_size() == 0

        wait_until(settled, timeout=timeout, what=f"the pipeline to settle at {last}")

    def metric(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """A counter's value summed over every process that wrote to the metrics folder."""
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.metrics_dir))  # type: ignore[no-untyped-call]
        total = 0.0
        for family in registry.collect():
            for sample in family.samples:
                if sample.name != name:
                    continue
                if labels and any(sample.labels.get(k) != v for k, v in labels.items()):
                    continue
                total += sample.value
        return total


def now_ms() -> int:
    return int(time.time() * 1000)
