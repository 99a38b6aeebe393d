"""The periodic relay of the Lobby outbox: whatever a kick after commit did not publish.

Kicks cover the normal path; this sweep covers the rest (a worker that died
between commit and append, Redis down for a while) and reports the backlog.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from galaxy_tasks import metrics
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports import LobbyOutbox

log = get_logger(__name__)


def relay_pending(
    outbox: LobbyOutbox,
    *,
    batch_games: int,
    time_budget_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Relay pending snapshots game batch by game batch until none is left or time is up."""
    deadline = clock() + time_budget_seconds
    appended = 0
    while clock() < deadline:
        games = outbox.pending_games(batch_games)
        if not games:
            break
        moved = outbox.relay_games(games, wait_for_locks=False)
        appended += moved
        if moved == 0:
            break  # the pending games are locked by tasks that will relay them themselves
    backlog = outbox.backlog()
    metrics.OUTBOX_BACKLOG.labels("gamemaster.lobby_outbox").set(backlog)
    if appended:
        metrics.LOBBY_EVENTS_PUBLISHED.inc(appended)
        log.info("lobby_outbox_relayed", appended=appended, backlog=backlog)
    return appended
