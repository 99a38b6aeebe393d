"""The Lobby outbox (``gamemaster.lobby_outbox`` → ``gm:lobby_events``): publishing and its sweep."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from galaxy_tasks import metrics
from galaxy_tasks.contract import LOBBY_OUTBOX
from galaxy_tasks.domain.errors import TransientError
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports import OutboxEntry, StreamOutbox
from galaxy_tasks.service.outbox_relay import publish_entries_after_commit, relay_pending

log = get_logger(__name__)


def publish_after_commit(outbox: StreamOutbox, entries: Sequence[OutboxEntry]) -> int:
    """Append just-committed Lobby snapshots for low latency; a failure only delays them to the sweep."""
    appended = publish_entries_after_commit(outbox, entries, label=LOBBY_OUTBOX.label)
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
        outbox, label=LOBBY_OUTBOX.label, batch_games=batch_games, time_budget_seconds=time_budget_seconds, clock=clock
    )
    metrics.LOBBY_EVENTS_PUBLISHED.inc(appended)
    return appended


def publish_games_now(outbox: StreamOutbox, game_ids: Sequence[str]) -> int:
    """Publish the games' committed snapshots now (after a repair applied them), waiting for their locks;
    with a backend away only logged: the periodic sweep covers it."""
    if not game_ids:
        return 0
    try:
        appended = outbox.relay_games(game_ids, wait_for_locks=True)
    except TransientError as exc:
        log.warning("lobby_relay_deferred", games=len(game_ids), error=str(exc))
        return 0
    metrics.LOBBY_EVENTS_PUBLISHED.inc(appended)
    return appended
