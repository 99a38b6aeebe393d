"""The Lobby outbox (``gamemaster.lobby_outbox`` → ``gm:lobby_events``): publishing and its sweep."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from galaxy_tasks import metrics
from galaxy_tasks.ports import OutboxEntry, StreamOutbox
from galaxy_tasks.service.outbox_relay import publish_entries_after_commit, relay_pending

LOBBY_OUTBOX_LABEL = "gamemaster.lobby_outbox"


def publish_after_commit(outbox: StreamOutbox, entries: Sequence[OutboxEntry]) -> int:
    """Append just-committed Lobby snapshots for low latency; a failure only delays them to the sweep."""
    appended = publish_entries_after_commit(outbox, entries, label=LOBBY_OUTBOX_LABEL)
    metrics.LOBBY_EVENTS_PUBLISHED.inc(appended)
    return appended


def relay_lobby_outbox(
    outbox: StreamOutbox,
    *,
    batch_games: int,
    time_budget_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """The periodic sweep of the Lobby outbox."""
    appended = relay_pending(
        outbox, label=LOBBY_OUTBOX_LABEL, batch_games=batch_games, time_budget_seconds=time_budget_seconds, clock=clock
    )
    metrics.LOBBY_EVENTS_PUBLISHED.inc(appended)
    return appended
