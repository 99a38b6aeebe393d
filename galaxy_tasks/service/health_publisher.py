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

from collections.abc import Callable
from dataclasses import dataclass

from galaxy_tasks import metrics
from galaxy_tasks.domain.rtmanager.convergence import RecoveryEvidence
from galaxy_tasks.domain.rtmanager.health import HealthEvent, validate_event
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.outbox import OutboxEntry, StreamOutbox
from galaxy_tasks.ports.rtmanager import HealthEventStore
from galaxy_tasks.service.outbox import after_commit

log = get_logger(__name__)


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


def publish_container_death(store: HealthEventStore, outbox: StreamOutbox, event: HealthEvent) -> Published | None:
    """Publish a death for good once, whoever sees it first (listener, reconciler or inspect).

    ``None`` when the record had already left ``running`` for that container.
    """
    validate_event(event)
    entry = store.record_death(event)
    if entry is None:
        log.info("container_death_already_reported", game_id=event.game_id, container_id=event.container_id)
        return None
    return announce_committed(outbox, event, entry)


def announce_committed(outbox: StreamOutbox, event: HealthEvent, entry: OutboxEntry) -> Published:
    """After the commit that recorded ``event``: append it now if it is next (else the relay will), count, log."""
    appended = after_commit(outbox, [entry]) > 0
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


class HealthPublisher:
    """Every way the Runtime Manager's observers publish, on one store and one outbox.

    What the inspect and probe tasks, the listener and the reconciler are given:
    a single object whose methods say which guarantee each publication has.
    """

    def __init__(self, store: HealthEventStore, outbox: StreamOutbox) -> None:
        self.store = store
        self.outbox = outbox

    def publish(self, event: HealthEvent) -> Published:
        return publish_health_event(self.store, self.outbox, event)

    def publish_once(self, event: HealthEvent, key: str) -> Published | None:
        return publish_health_event_once(self.store, self.outbox, event, key=key)

    def publish_loss(self, event: HealthEvent) -> Published | None:
        return publish_container_loss(self.store, self.outbox, event)

    def publish_death(self, event: HealthEvent) -> Published | None:
        return publish_container_death(self.store, self.outbox, event)

    def observe_recovery(
        self,
        game_id: str,
        down_seq: int,
        fold: Callable[[RecoveryEvidence], RecoveryEvidence],
        *,
        success_threshold: int,
        now_ms: int,
    ) -> Published | None:
        """Fold one observation made in down period ``down_seq`` into its evidence.

        When the evidence is complete (SPEC §5 "Recoveries"), ``probe_recovered``
        is published, once per down period: the store ends the period in the
        same commit.  ``None`` when nothing was published.
        """
        made: list[HealthEvent] = []

        def recovery(evidence: RecoveryEvidence) -> HealthEvent | None:
            if not evidence.complete(success_threshold):
                return None
            made.append(
                HealthEvent.probe_recovered(
                    game_id, evidence.container_id, now_ms, prior_failures=evidence.probe_failures
                )
            )
            return made[-1]

        entry = self.store.advance_recovery(game_id, down_seq, fold, recovery)
        if entry is None or not made:
            return None
        log.info("game_recovered", game_id=game_id, container_id=made[-1].container_id, down_seq=down_seq)
        metrics.RECOVERIES.inc()
        return announce_committed(self.outbox, made[-1], entry)
