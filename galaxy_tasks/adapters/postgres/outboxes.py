"""The system's outboxes as the PostgreSQL outbox adapter runs them: the contract's names, plus how each
stream is trimmed and what trimming must never pass."""

from __future__ import annotations

from typing import Any

from galaxy_tasks.adapters.postgres.stream_outbox import OutboxSpec
from galaxy_tasks.contract import (
    HEALTH_EVENT_OUTBOX,
    HEALTH_EVENTS_BRIDGE_KEYS,
    JOB_RESULT_OUTBOX,
    LOBBY_OUTBOX,
    OutboxNames,
)


def spec_of(names: OutboxNames, **options: Any) -> OutboxSpec:
    return OutboxSpec(
        table=names.table, lock_table=names.lock_table, stream=names.stream, mark_key=names.mark_key, **options
    )


LOBBY_OUTBOX_SPEC = spec_of(LOBBY_OUTBOX, source_column="stream_entry_id")
"""GM → Lobby snapshots, numbered under the game's consumer cursor."""

JOB_RESULT_OUTBOX_SPEC = spec_of(JOB_RESULT_OUTBOX)
"""RTM → Lobby job results, numbered under the game's job row (held by every job of the game)."""


def health_events_outbox(maxlen: int) -> OutboxSpec:
    """RTM → GM health events, numbered under the game's health snapshot row.

    The stream is trimmed to about ``maxlen`` entries, never past the Game
    Master bridge's stored offset nor past the oldest entry its order repair may
    still re-read.
    """
    return spec_of(
        HEALTH_EVENT_OUTBOX,
        maxlen=maxlen,
        guard_key=HEALTH_EVENTS_BRIDGE_KEYS.offset,
        guard_progress_key=HEALTH_EVENTS_BRIDGE_KEYS.progress,
        guard_floor_key=HEALTH_EVENTS_BRIDGE_KEYS.repair_floor,
    )
