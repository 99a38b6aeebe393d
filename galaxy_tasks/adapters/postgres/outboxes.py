"""The system's outboxes: which table, which per-game lock, which stream, which mark."""

from __future__ import annotations

from galaxy_tasks.adapters.postgres.stream_outbox import OutboxSpec
from galaxy_tasks.long_running import HEALTH_EVENTS_BRIDGE_KEYS, HEALTH_EVENTS_STREAM

LOBBY_STREAM = "gm:lobby_events"
JOB_RESULTS_STREAM = "runtime:job_results"

LOBBY_OUTBOX = OutboxSpec(
    table="gamemaster.lobby_outbox",
    lock_table="gamemaster.health_event_cursors",
    stream=LOBBY_STREAM,
    mark_key="gamemaster:lobby_outbox:published_seq",
)
"""GM → Lobby snapshots, numbered under the game's consumer cursor."""


def health_events_outbox(maxlen: int) -> OutboxSpec:
    """RTM → GM health events, numbered under the game's health snapshot row.

    The stream is trimmed to about ``maxlen`` entries, never past the Game
    Master bridge's stored offset nor past the oldest entry its order repair may
    still re-read.
    """
    return OutboxSpec(
        table="rtmanager.health_event_outbox",
        lock_table="rtmanager.health_snapshots",
        stream=HEALTH_EVENTS_STREAM,
        mark_key="rtmanager:health_event_outbox:published_seq",
        maxlen=maxlen,
        guard_key=HEALTH_EVENTS_BRIDGE_KEYS.offset,
        guard_progress_key=HEALTH_EVENTS_BRIDGE_KEYS.progress,
        guard_floor_key=HEALTH_EVENTS_BRIDGE_KEYS.repair_floor,
    )


JOB_RESULT_OUTBOX = OutboxSpec(
    table="rtmanager.job_result_outbox",
    lock_table="rtmanager.game_jobs",
    stream=JOB_RESULTS_STREAM,
    mark_key="rtmanager:job_result_outbox:published_seq",
)
"""RTM → Lobby job results, numbered under the game's job row (held by every job of the game)."""
