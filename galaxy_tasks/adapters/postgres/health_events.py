"""The RTM's health-event store: snapshot upsert and outbox row in one transaction (one round trip)."""

from __future__ import annotations

import json

from sqlalchemy import Connection, Engine, text

from galaxy_tasks.adapters.postgres.engine import translated_errors
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.ports import OutboxEntry

# Shared tail: the snapshot upsert numbers the entry, the outbox insert takes the number.
_UPSERT_TAIL = """
        ON CONFLICT (game_id) DO UPDATE SET
            container_id = EXCLUDED.container_id, status = EXCLUDED.status, source = EXCLUDED.source,
            details = EXCLUDED.details, observed_at = EXCLUDED.observed_at, event_seq = s.event_seq + 1
        RETURNING game_id, event_seq
    )
    INSERT INTO rtmanager.health_event_outbox (game_id, seq, fields)
    SELECT game_id, event_seq, CAST(:fields AS jsonb) FROM snapshot
    RETURNING seq
"""

# The upsert locks the game's snapshot row and numbers the entry; the outbox insert reads the
# number from it.  One statement, so autocommit makes it one transaction.
_RECORD = text(
    """
    WITH snapshot AS (
        INSERT INTO rtmanager.health_snapshots AS s
            (game_id, container_id, status, source, details, observed_at, event_seq)
        VALUES (:game_id, :container_id, :status, :source, CAST(:details AS jsonb),
                to_timestamp(CAST(:observed_at_ms AS double precision) / 1000), 1)
{upsert_tail}
    """.format(upsert_tail=_UPSERT_TAIL.strip("\n"))
)


# The same, gated by one compare-and-swap on the game's runtime record: only the caller that
# moves the record out of `running` (for this very container) records the event.  The
# reconciler and the Docker events listener both go through it, so a lost container is
# reported once whoever sees it first.
_RECORD_LOSS = text(
    """
    WITH lost AS (
        UPDATE rtmanager.runtime_records SET status = :new_status, updated_at = now()
        WHERE game_id = :game_id AND status = 'running' AND current_container_id = :container_id
        RETURNING game_id
    ), snapshot AS (
        INSERT INTO rtmanager.health_snapshots AS s
            (game_id, container_id, status, source, details, observed_at, event_seq)
        SELECT game_id, :container_id, :status, :source, CAST(:details AS jsonb),
               to_timestamp(CAST(:observed_at_ms AS double precision) / 1000), 1
        FROM lost
{upsert_tail}
    """.format(upsert_tail=_UPSERT_TAIL.strip("\n"))
)

# The same, once per idempotency key: the key's insert gates the rest.
_RECORD_ONCE = text(
    """
    WITH claim AS (
        INSERT INTO rtmanager.health_event_keys (event_key) VALUES (:event_key)
        ON CONFLICT (event_key) DO NOTHING
        RETURNING event_key
    ), snapshot AS (
        INSERT INTO rtmanager.health_snapshots AS s
            (game_id, container_id, status, source, details, observed_at, event_seq)
        SELECT :game_id, :container_id, :status, :source, CAST(:details AS jsonb),
               to_timestamp(CAST(:observed_at_ms AS double precision) / 1000), 1
        FROM claim
{upsert_tail}
    """.format(upsert_tail=_UPSERT_TAIL.strip("\n"))
)
_PRUNE_KEYS = text(
    "DELETE FROM rtmanager.health_event_keys "
    "WHERE created_at < to_timestamp(CAST(:before_ms AS double precision) / 1000)"
)

LOST_STATUS = "disappeared"
"""What ``rtmanager.runtime_records.status`` becomes when its running container is gone."""


class PostgresHealthEventStore:
    """``HealthEventStore``: what a published health event leaves in PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._url = engine.url.render_as_string(hide_password=False)

    def record(self, event: HealthEvent) -> OutboxEntry:
        with translated_errors(self._url), self._engine.begin() as conn:
            return record_health_event(conn, event)

    def record_once(self, event: HealthEvent, key: str) -> OutboxEntry | None:
        """Record ``event`` unless an event with the same idempotency ``key`` was recorded before."""
        with translated_errors(self._url), self._engine.begin() as conn:
            seq = conn.execute(_RECORD_ONCE, {**_params(event), "event_key": key}).scalar_one_or_none()
        return None if seq is None else OutboxEntry(event.game_id, int(seq), event.to_fields())

    def prune_keys(self, before_ms: int) -> int:
        with translated_errors(self._url), self._engine.begin() as conn:
            return int(conn.execute(_PRUNE_KEYS, {"before_ms": before_ms}).rowcount or 0)

    def record_loss(self, event: HealthEvent) -> OutboxEntry | None:
        """Record ``event`` only if this call moves the game's record out of ``running``."""
        with translated_errors(self._url), self._engine.begin() as conn:
            seq = conn.execute(_RECORD_LOSS, {**_params(event), "new_status": LOST_STATUS}).scalar_one_or_none()
        return None if seq is None else OutboxEntry(event.game_id, int(seq), event.to_fields())


def record_health_event(conn: Connection, event: HealthEvent) -> OutboxEntry:
    """Upsert the snapshot and queue the entry inside the caller's transaction (a start job's commit)."""
    seq = conn.execute(_RECORD, _params(event)).scalar_one()
    return OutboxEntry(event.game_id, int(seq), event.to_fields())


def _params(event: HealthEvent) -> dict[str, object]:
    snapshot = event.snapshot()
    return {
        "game_id": snapshot.game_id,
        "container_id": snapshot.container_id,
        "status": snapshot.status.value,
        "source": snapshot.source.value,
        "details": json.dumps(dict(snapshot.details)),
        "observed_at_ms": snapshot.observed_at_ms,
        "fields": json.dumps(event.to_fields()),
    }
