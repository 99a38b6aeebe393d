"""The RTM's health-event store: snapshot upsert and outbox row in one transaction (one round trip).

The snapshot row also holds the game's down period and the evidence of its
recovery (migration 0008), so an event and the period it begins or ends are
committed together.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, Row, TextClause, text

from galaxy_tasks.adapters.postgres.engine import translated_errors
from galaxy_tasks.domain.health_events import HealthEventType
from galaxy_tasks.domain.rtmanager.convergence import RecoveryEvidence, is_down_event
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.jobs import RecordStatus
from galaxy_tasks.ports.outbox import OutboxEntry

# Every statement below inserts the same columns; the values differ only in where they come from.
_COLUMNS = (
    "(game_id, container_id, status, source, details, observed_at, event_seq, down_seq, recovery_failures, outbox_head)"
)
_VALUES = """:container_id, :status, :source, CAST(:details AS jsonb),
               to_timestamp(CAST(:observed_at_ms AS double precision) / 1000), 1,
               CASE WHEN :down THEN 1 ELSE 0 END, :down_failures, gen_random_uuid()"""

# Shared tail: the snapshot upsert numbers the entry, links it to the game's previous one (the
# chain of outbox row identities, migration 0009) and moves the down period (a down event begins
# a new one and forgets the evidence of the last; probe_recovered ends it), the outbox insert
# takes the number and the link.
_UPSERT_TAIL = """
        ON CONFLICT (game_id) DO UPDATE SET
            container_id = EXCLUDED.container_id, status = EXCLUDED.status, source = EXCLUDED.source,
            details = EXCLUDED.details, observed_at = EXCLUDED.observed_at, event_seq = s.event_seq + 1,
            down_seq = CASE WHEN :down THEN s.event_seq + 1 WHEN :ends_down THEN 0 ELSE s.down_seq END,
            recovery_container = CASE WHEN :down OR :ends_down THEN '' ELSE s.recovery_container END,
            recovery_inspected = CASE WHEN :down OR :ends_down THEN false ELSE s.recovery_inspected END,
            recovery_probes = CASE WHEN :down OR :ends_down THEN 0 ELSE s.recovery_probes END,
            recovery_failures = CASE WHEN :down OR :ends_down THEN :down_failures ELSE s.recovery_failures END,
            outbox_prev = s.outbox_head, outbox_head = gen_random_uuid()
        RETURNING game_id, event_seq, outbox_head, outbox_prev
    )
    INSERT INTO rtmanager.health_event_outbox (game_id, seq, uid, prev_uid, fields)
    SELECT game_id, event_seq, outbox_head, outbox_prev, CAST(:fields AS jsonb) FROM snapshot
    RETURNING seq, uid, prev_uid
"""


def _statement(head: str, source: str) -> TextClause:
    """``head`` (CTEs gating the insert, or nothing), the snapshot upsert reading from ``source``, the outbox row."""
    insert = f"INSERT INTO rtmanager.health_snapshots AS s {_COLUMNS}\n" + (
        f"        VALUES (:game_id, {_VALUES})" if not source else f"        SELECT game_id, {_VALUES} FROM {source}"
    )
    return text(f"WITH {head}snapshot AS (\n        {insert}{_UPSERT_TAIL}")


# The upsert locks the game's snapshot row and numbers the entry; the outbox insert reads the
# number from it.  One statement, so autocommit makes it one transaction.
_RECORD = _statement("", "")

# The same, gated by one compare-and-swap on the game's runtime record: only the caller that
# moves the record out of `running` (for this very container) records the event.  The
# reconciler, the inspect task and the Docker events listener all go through it, so a lost or
# dead container is reported once whoever sees it first.
_RECORD_TRANSITION = _statement(
    """moved AS (
        UPDATE rtmanager.runtime_records SET status = :new_status, updated_at = now()
        WHERE game_id = :game_id AND status = :running AND current_container_id = :container_id
        RETURNING game_id
    ), """,
    "moved",
)

# The same, once per idempotency key: the key's insert gates the rest.
_RECORD_ONCE = _statement(
    """claim AS (
        INSERT INTO rtmanager.health_event_keys (event_key) VALUES (:event_key)
        ON CONFLICT (event_key) DO NOTHING
        RETURNING :game_id AS game_id
    ), """,
    "claim",
)
_PRUNE_KEYS = text(
    "DELETE FROM rtmanager.health_event_keys "
    "WHERE created_at < to_timestamp(CAST(:before_ms AS double precision) / 1000)"
)
_REVIVE = text(
    "UPDATE rtmanager.runtime_records SET status = :running, updated_at = now() "
    "WHERE game_id = :game_id AND status = :exited AND current_container_id = :container_id"
)
_REVIVAL = {"running": RecordStatus.RUNNING.value, "exited": RecordStatus.EXITED.value}
_LOCK_DOWN_PERIOD = text(
    "SELECT down_seq, recovery_container, recovery_inspected, recovery_probes, recovery_failures "
    "FROM rtmanager.health_snapshots WHERE game_id = :game_id FOR UPDATE"
)
_WRITE_EVIDENCE = text(
    "UPDATE rtmanager.health_snapshots SET recovery_container = :container_id, recovery_inspected = :inspected, "
    "recovery_probes = :probes, recovery_failures = :failures WHERE game_id = :game_id"
)

LOST_STATUS = RecordStatus.DISAPPEARED
"""What ``rtmanager.runtime_records.status`` becomes when its running container is gone."""
DEAD_STATUS = RecordStatus.EXITED
"""What it becomes when its running container stopped for good by itself."""


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
            row = conn.execute(_RECORD_ONCE, {**_params(event), "event_key": key}).one_or_none()
        return None if row is None else _entry(event, row)

    def prune_keys(self, before_ms: int) -> int:
        with translated_errors(self._url), self._engine.begin() as conn:
            return int(conn.execute(_PRUNE_KEYS, {"before_ms": before_ms}).rowcount or 0)

    def record_loss(self, event: HealthEvent) -> OutboxEntry | None:
        """Record ``event`` only if this call moves the game's record ``running → disappeared``."""
        return self._record_transition(event, LOST_STATUS)

    def record_death(self, event: HealthEvent) -> OutboxEntry | None:
        """Record ``event`` only if this call moves the game's record ``running → exited``."""
        return self._record_transition(event, DEAD_STATUS)

    def _record_transition(self, event: HealthEvent, new_status: RecordStatus) -> OutboxEntry | None:
        with translated_errors(self._url), self._engine.begin() as conn:
            row = conn.execute(
                _RECORD_TRANSITION,
                {**_params(event), "new_status": new_status.value, "running": RecordStatus.RUNNING.value},
            ).one_or_none()
        return None if row is None else _entry(event, row)

    def record_revival(self, game_id: str, container_id: str) -> bool:
        """``exited → running`` for this very container, in one compare-and-swap."""
        with translated_errors(self._url), self._engine.begin() as conn:
            return bool(conn.execute(_REVIVE, {"game_id": game_id, "container_id": container_id, **_REVIVAL}).rowcount)

    def advance_recovery(
        self,
        game_id: str,
        down_seq: int,
        fold: Callable[[RecoveryEvidence], RecoveryEvidence],
        recovery: Callable[[RecoveryEvidence], HealthEvent | None],
    ) -> OutboxEntry | None:
        """Under the snapshot row's lock: fold an observation into down period ``down_seq``, maybe end it."""
        with translated_errors(self._url), self._engine.begin() as conn:
            row = conn.execute(_LOCK_DOWN_PERIOD, {"game_id": game_id}).one_or_none()
            if row is None or row.down_seq == 0 or row.down_seq != down_seq:
                return None  # not down, or the observation started in an earlier period
            before = RecoveryEvidence(
                row.recovery_container, row.recovery_inspected, row.recovery_probes, row.recovery_failures
            )
            evidence = fold(before)
            event = recovery(evidence)
            if event is not None:
                return record_health_event(conn, event)
            if evidence != before:
                conn.execute(
                    _WRITE_EVIDENCE,
                    {
                        "game_id": game_id,
                        "container_id": evidence.container_id,
                        "inspected": evidence.inspected_healthy,
                        "probes": evidence.probe_successes,
                        "failures": evidence.probe_failures,
                    },
                )
            return None


def record_health_event(conn: Connection, event: HealthEvent) -> OutboxEntry:
    """Upsert the snapshot and queue the entry inside the caller's transaction (a start job's commit)."""
    return _entry(event, conn.execute(_RECORD, _params(event)).one())


def _entry(event: HealthEvent, row: Row[Any]) -> OutboxEntry:
    """The committed outbox row (``seq, uid, prev_uid``) of ``event``."""
    return OutboxEntry(event.game_id, int(row.seq), event.to_fields(), str(row.uid), str(row.prev_uid or ""))


def _params(event: HealthEvent) -> dict[str, object]:
    snapshot = event.snapshot()
    failures = event.details.get("consecutive_failures", 0) if event.event_type is HealthEventType.PROBE_FAILED else 0
    return {
        "down": is_down_event(event.event_type),
        "ends_down": event.event_type is HealthEventType.PROBE_RECOVERED,
        "down_failures": int(failures),
        "game_id": snapshot.game_id,
        "container_id": snapshot.container_id,
        "status": snapshot.status.value,
        "source": snapshot.source.value,
        "details": json.dumps(dict(snapshot.details)),
        "observed_at_ms": snapshot.observed_at_ms,
        "fields": json.dumps(event.to_fields()),
    }
