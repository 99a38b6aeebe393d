"""Publishing a Runtime Manager health observation (SPEC §5 "RTM", seed ``000`` and beyond).

The seed upserts ``health_snapshots`` and then ``XADD``s, so a crash or a Redis
outage between the two loses the event.  Here the snapshot and the stream
entry are committed together (the entry in an outbox row), the entry is
appended right after commit when it is its game's next one, and the periodic
relay appends whatever that missed: the snapshot store is never behind the
stream, no committed event is lost, none is appended twice, and per game the
stream order is the commit order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from galaxy_tasks import metrics
from galaxy_tasks.domain.rtmanager.health import HealthEvent, validate_event
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports import OutboxEntry, StreamOutbox
from galaxy_tasks.service.outbox_relay import publish_entries_after_commit

log = get_logger(__name__)

HEALTH_EVENT_OUTBOX_LABEL = "rtmanager.health_event_outbox"


class HealthEventStore(Protocol):
    def record(self, event: HealthEvent) -> OutboxEntry:
        """Upsert the game's snapshot and queue the stream entry, in one transaction."""
        ...

    def record_once(self, event: HealthEvent, key: str) -> OutboxEntry | None:
        """The same, unless an event with this idempotency ``key`` was recorded before."""
        ...

    def record_loss(self, event: HealthEvent) -> OutboxEntry | None:
        """The same, only if this call moves the game's runtime record out of ``running`` (one CAS)."""
        ...


@dataclass(frozen=True)
class Published:
    seq: int
    """The event's number among its game's events."""
    appended: bool
    """On the stream already; otherwise the periodic relay will append it."""

    def as_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "appended": self.appended}


def publish_health_event(store: HealthEventStore, outbox: StreamOutbox, event: HealthEvent) -> Published:
    validate_event(event)
    return announce_committed(outbox, event, store.record(event))


def publish_health_event_once(
    store: HealthEventStore, outbox: StreamOutbox, event: HealthEvent, *, key: str
) -> Published | None:
    """Publish ``event`` unless one with the same idempotency ``key`` was (a Docker event seen twice)."""
    validate_event(event)
    entry = store.record_once(event, key)
    if entry is None:
        log.info("health_event_already_recorded", game_id=event.game_id, key=key)
        return None
    return announce_committed(outbox, event, entry)


def publish_container_loss(store: HealthEventStore, outbox: StreamOutbox, event: HealthEvent) -> Published | None:
    """Publish a lost container's event once, whoever sees the loss first (reconciler or listener).

    ``None`` when someone else already moved the record out of ``running``.
    """
    validate_event(event)
    entry = store.record_loss(event)
    if entry is None:
        log.info("container_loss_already_reported", game_id=event.game_id, container_id=event.container_id)
        return None
    return announce_committed(outbox, event, entry)


def announce_committed(outbox: StreamOutbox, event: HealthEvent, entry: OutboxEntry) -> Published:
    """After the commit that recorded ``event``: append it now if it is next (else the relay will), count, log."""
    appended = publish_entries_after_commit(outbox, [entry], label=HEALTH_EVENT_OUTBOX_LABEL) > 0
    metrics.HEALTH_EVENTS_PUBLISHED.labels(event.event_type.value).inc()
    log.info(
        "health_event_published",
        game_id=event.game_id,
        container_id=event.container_id,
        event_type=event.event_type.value,
        seq=entry.seq,
        appended=appended,
    )
    return Published(entry.seq, appended)
