"""Scenario (a): a straight, one-at-a-time Python port of seed ``001``'s consumer loop.

One process, one Redis client, one autocommit PostgreSQL connection, exactly
the Go worker's round trips per entry::

    XREAD COUNT 1 BLOCK  (from the stored offset)
    SELECT the record                       (RuntimeRecords.Get)
    UPDATE ... WHERE status = :from         (CAS, when the event type has a transition)
    UPDATE engine_health                    (summary-only, without a transition or on CAS conflict)
    -- only when the debounce says publish (status changed, or summary differs from the last emitted):
    SELECT the record again                 (snapshot from the row after the write)
    XADD gm:lobby_events
    SET the offset                          (offsetStore.Save)

The debounce map lives in process memory, as in the seed.  This is the
baseline the Celery pipeline is compared with; it is not part of galaxy_tasks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from sqlalchemy import Connection, create_engine, text

from bench.stores import HEALTH_STREAM, LOBBY_STREAM, OFFSET_KEY
from galaxy_tasks.testing.seed001 import SEED_SUMMARY, SEED_TRANSITION, decode

_GET = text(
    "SELECT game_id, status, engine_health, current_turn FROM gamemaster.runtime_records WHERE game_id = :game_id"
)
_UPDATE_STATUS = text(
    "UPDATE gamemaster.runtime_records SET status = :to, engine_health = :summary, updated_at = :now "
    "WHERE game_id = :game_id AND status = :expected_from"
)
_UPDATE_HEALTH = text(
    "UPDATE gamemaster.runtime_records SET engine_health = :summary, updated_at = :now WHERE game_id = :game_id"
)


@dataclass
class SeedLoopReport:
    entries: int = 0
    skipped: int = 0
    transitions: int = 0
    published: int = 0
    seconds: float = 0.0
    last_id: str = ""


class SeedConsumer:
    """``healtheventsconsumer.Worker`` of seed ``001``, statement for statement."""

    def __init__(self, client: redis.Redis, conn: Connection) -> None:
        self._r = client
        self._c = conn
        self._last_emitted: dict[str, str] = {}
        self.report = SeedLoopReport()

    def run_until(self, last_entry_id: str, *, block_ms: int = 1000, timeout: float = 600.0) -> SeedLoopReport:
        """Run the XREAD loop from the stored offset until ``last_entry_id`` was handled."""
        started = time.perf_counter()
        stored = self._r.get(OFFSET_KEY)
        last_id = str(stored) if stored else "0-0"
        while last_id != last_entry_id:
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"seed loop did not reach {last_entry_id} within {timeout}s (at {last_id})")
            reply = self._r.xread({HEALTH_STREAM: last_id}, count=1, block=block_ms)
            if not reply:
                continue
            for entry_id, fields in _messages(reply):
                self.handle(entry_id, fields)
                self._r.set(OFFSET_KEY, entry_id)
                last_id = entry_id
        self.report.seconds = time.perf_counter() - started
        self.report.last_id = last_id
        return self.report

    def handle(self, entry_id: str, fields: dict[str, str]) -> None:
        self.report.entries += 1
        decoded = decode(fields)
        if decoded is None:
            self.report.skipped += 1
            return
        game_id, event_type = decoded
        summary = SEED_SUMMARY.get(event_type)
        if summary is None:
            self.report.skipped += 1
            return
        now = datetime.now(UTC)
        current = self._c.execute(_GET, {"game_id": game_id}).first()
        if current is None:
            self.report.skipped += 1
            return
        status_changed = self._apply_mutation(game_id, event_type, summary, now)
        if not status_changed and self._last_emitted.get(game_id) == summary:
            return
        refreshed = self._c.execute(_GET, {"game_id": game_id}).one()
        self._r.xadd(
            LOBBY_STREAM,
            {
                "event_type": "runtime_snapshot_update",
                "game_id": refreshed.game_id,
                "current_turn": str(refreshed.current_turn),
                "runtime_status": refreshed.status,
                "engine_health_summary": refreshed.engine_health,
                "player_turn_stats": "[]",
                "occurred_at_ms": str(int(now.timestamp() * 1000)),
            },
        )
        self.report.published += 1
        self._last_emitted[game_id] = summary

    def _apply_mutation(self, game_id: str, event_type: str, summary: str, now: datetime) -> bool:
        transition = SEED_TRANSITION.get(event_type)
        if transition is not None:
            result = self._c.execute(
                _UPDATE_STATUS,
                {
                    "to": transition[1],
                    "summary": summary,
                    "now": now,
                    "game_id": game_id,
                    "expected_from": transition[0],
                },
            )
            if result.rowcount == 1:
                self.report.transitions += 1
                return True
        self._c.execute(_UPDATE_HEALTH, {"summary": summary, "now": now, "game_id": game_id})
        return False


def _messages(reply: object) -> list[tuple[str, dict[str, str]]]:
    if isinstance(reply, dict):  # RESP3 clients answer with a mapping
        return [m for messages in reply.values() for m in messages[0]]
    assert isinstance(reply, list)
    return [m for _stream, messages in reply for m in messages]


def run_seed_loop(redis_url: str, database_url: str, last_entry_id: str) -> SeedLoopReport:
    """Connect like the Go service (one client, autocommit statements) and drain up to ``last_entry_id``."""
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=10)
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with engine.connect() as conn:
            return SeedConsumer(client, conn).run_until(last_entry_id)
    finally:
        client.close()
        engine.dispose()
