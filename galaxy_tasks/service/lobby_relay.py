"""Publishing the Lobby outbox: right after commit, and the periodic relay of whatever that missed.

Right after its commit a task appends its own snapshots with no database
round trip when they are next in their game's sequence (the common case), and
otherwise relays its games under their cursor locks.  The periodic sweep
covers the rest (a worker that died between commit and append, Redis down for
a while), deletes the rows already appended, and reports the backlog.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from galaxy_tasks import metrics
from galaxy_tasks.domain.errors import TransientError
from galaxy_tasks.domain.gamemaster.records import QueuedSnapshot
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports import LobbyOutbox

log = get_logger(__name__)


def publish_after_commit(outbox: LobbyOutbox, snapshots: Sequence[QueuedSnapshot]) -> int:
    """Append just-committed snapshots for low latency; a failure only delays them to the sweep."""
    if not snapshots:
        return 0
    try:
        appended, out_of_turn = outbox.publish_committed(snapshots)
        if out_of_turn:
            appended += outbox.relay_games(out_of_turn, wait_for_locks=True)
    except TransientError as exc:
        games = len({s.game_id for s in snapshots})
        log.warning("lobby_relay_deferred", games=games, error=str(exc))
        return 0
    metrics.LOBBY_EVENTS_PUBLISHED.inc(appended)
    return appended


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
