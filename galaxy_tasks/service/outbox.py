"""The outbox service: getting committed outbox rows onto their stream, for all three outboxes.

Two operations, whatever the outbox (the Lobby's, the health events', the job
results'; each port names itself by the contract's label):

* :func:`after_commit` — a task appends its own just-committed entries with no
  database round trip when they are next in their game's sequence (the common
  case), and otherwise relays its games under their locks; a failure only
  leaves them to the relay;
* :func:`relay` — the periodic sweep: what a worker that died between commit
  and append, or Redis down for a while, left behind; deletes the rows already
  appended, reports the backlog, holds the stream to its retention.

:func:`publish_games` appends given games' rows now (after the order repair
applied them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from galaxy_tasks import metrics
from galaxy_tasks.contract import LOBBY_OUTBOX
from galaxy_tasks.domain.errors import TransientError
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.outbox import OutboxEntry, RetentionReport, StreamOutbox

log = get_logger(__name__)


APPENDED_COUNTERS = {LOBBY_OUTBOX.label: metrics.LOBBY_EVENTS_PUBLISHED}
"""Outboxes whose appends have a counter of their own."""


def _appended(outbox: StreamOutbox, count: int) -> int:
    counter = APPENDED_COUNTERS.get(outbox.label)
    if counter is not None and count:
        counter.inc(count)
    return count


def after_commit(outbox: StreamOutbox, entries: Sequence[OutboxEntry]) -> int:
    """Append just-committed entries: next-in-turn ones at once, others under their games' locks.

    A failure only delays them to the periodic sweep: the rows are committed.
    """
    if not entries:
        return 0
    try:
        appended, out_of_turn = outbox.publish_committed(entries)
        if out_of_turn:
            appended += outbox.relay_games(out_of_turn, wait_for_locks=True)
    except TransientError as exc:
        games = len({e.game_id for e in entries})
        log.warning("outbox_publish_deferred", outbox=outbox.label, games=games, error=str(exc))
        return 0
    return _appended(outbox, appended)


def publish_games(outbox: StreamOutbox, game_ids: Sequence[str]) -> int:
    """Append the games' committed rows now, waiting for their locks; with a backend away only logged
    (the relay covers it)."""
    if not game_ids:
        return 0
    try:
        appended = outbox.relay_games(game_ids, wait_for_locks=True)
    except TransientError as exc:
        log.warning("outbox_publish_deferred", outbox=outbox.label, games=len(game_ids), error=str(exc))
        return 0
    return _appended(outbox, appended)


def report_new_generation(stream: str, game_ids: Sequence[str]) -> None:
    """A relay found games whose rows are of another generation of the database than their marks.

    The database went back in time (restored from a dump, failed over to a
    standby that missed commits, downgraded): the rows were appended all the
    same, so nothing is lost, but consumers may see an entry a second time, and
    the operator should know (docs/operations.md, "After a database restore").
    """
    metrics.OUTBOX_NEW_GENERATIONS.labels(stream).inc(len(game_ids))
    log.error("outbox_new_generation", stream=stream, games=len(game_ids), game_ids=list(game_ids)[:20])


def relay(
    outbox: StreamOutbox,
    *,
    batch_games: int,
    time_budget_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """One sweep of the outbox, page by page in row order, until its end or the time budget.

    Each page is read without locks; only the games it shows rows to append
    or rows durable enough to delete are visited under their locks (skipping
    games whose tasks hold them: those publish their own rows).  Then the
    stream is held to its retention, if it has one.
    """
    label = outbox.label
    deadline = clock() + time_budget_seconds
    appended = 0
    unappended = 0
    after = 0
    while clock() < deadline:
        page = outbox.scan_page(after, batch_games)
        unappended += page.unappended
        if page.games:
            appended += outbox.relay_games(page.games, wait_for_locks=False)
        if not page.next_after:
            break
        after = page.next_after
    backlog = max(unappended - appended, 0)
    metrics.OUTBOX_BACKLOG.labels(label).set(backlog)
    if appended:
        log.info("outbox_relayed", outbox=label, appended=appended, backlog=backlog)
    forgotten = outbox.forget_idle_games(IDLE_GAME_MS, IDLE_SCAN_BATCH)
    if forgotten:
        log.info("outbox_idle_games_forgotten", outbox=label, games=forgotten)
    retention = outbox.enforce_retention()
    if retention is not None:
        report_retention(label, retention)
    return _appended(outbox, appended)


IDLE_GAME_MS = 24 * 3_600_000
"""A game nothing was relayed for in a day (and no row left) has its per-game marks in Redis forgotten."""
IDLE_SCAN_BATCH = 200
"""Marks looked at per relay run (a scan over all of them, a step at a time)."""
AT_RISK_SHARE = 0.8
"""A consumer group whose oldest unread entry is older than this share of the retention is alarmed."""


def report_retention(label: str, report: RetentionReport) -> None:
    """Count what retention trimmed; alarm on consumer groups close to losing what they have not read.

    Retention never trims an entry a consumer group has not read, so such a
    group makes the stream grow instead; it is still the operator's to know.
    A consumer reading without a group (plain ``XREAD``) is invisible here:
    the retention must be longer than any of its outages.
    """
    metrics.STREAM_TRIMMED_BY_AGE.labels(label).inc(report.trimmed)
    metrics.STREAM_OLDEST_ENTRY_AGE.labels(label).set(report.oldest_entry_age_seconds or 0.0)
    limit = AT_RISK_SHARE * report.retention_seconds
    at_risk = {group: age for group, age in report.unread_ages_seconds.items() if age > limit}
    metrics.STREAM_UNREAD_AT_RISK.labels(label).set(len(at_risk))
    for group, age in sorted(at_risk.items()):
        log.warning(
            "stream_unread_near_retention",
            stream=label,
            group=group,
            unread_age_s=round(age),
            retention_s=report.retention_seconds,
        )
