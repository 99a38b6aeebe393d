"""Game Master tasks: per-entry CAS, backlog chunks, the Lobby outbox relay, the order repair, the bridge.

Each body is one call into ``resources().gamemaster`` (``bootstrap/gamemaster.py``).
"""

from __future__ import annotations

from typing import Any

from celery import Task

from galaxy_tasks.bootstrap import resources
from galaxy_tasks.domain.errors import RowLocked
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.task_names import TaskName
from galaxy_tasks.tasks._base import LONG_RUNNING_OPTIONS, galaxy_task, retry_later, stop_condition


@galaxy_task(TaskName.GM_APPLY_HEALTH_EVENT, acks_late=True)
def apply_health_event(
    self: Task, entry_id: str, fields: dict[str, str], prev_entry_id: str | None = None
) -> dict[str, Any]:
    """Apply one ``runtime:health_events`` entry to its game's runtime record (SPEC §5 GM).

    ``prev_entry_id`` is the previous entry of the same game: until that one is
    applied this entry is parked, and then applied in the same transaction as
    it.  Safe to run twice: a second run finds the game's cursor past the entry.
    """
    handoff = Handoff(entry_id, dict(fields), prev_entry_id)
    return resources().gamemaster.apply_health_event(handoff).as_dict()


@galaxy_task(TaskName.GM_APPLY_HEALTH_EVENTS_CHUNK, acks_late=True)
def apply_health_events_chunk(self: Task, entries: list[list[Any]]) -> dict[str, Any]:
    """Apply an ordered chunk of health entries in turn, in one transaction (backlog mode).

    Each item is ``[entry_id, fields, prev_entry_id]``, exactly the arguments
    of ``gamemaster.apply_health_event``; the result counts outcomes.
    """
    batch = resources().gamemaster.apply_chunk([Handoff(str(e[0]), dict(e[1]), e[2]) for e in entries])
    if batch.held:  # games whose rows another session holds: only their entries are tried again
        retry_later(self, [[h.as_args() for h in batch.held]], RowLocked(f"{len(batch.held)} entries held back"))
    counts: dict[str, int] = {}
    for result in batch.results:
        outcome = str(result.as_dict()["outcome"])
        counts[outcome] = counts.get(outcome, 0) + 1
    return {"entries": len(entries), "outcomes": counts, "released_from_parking": len(batch.released)}


@galaxy_task(TaskName.GM_RELAY_LOBBY_EVENTS, acks_late=True)
def relay_lobby_events(self: Task) -> dict[str, Any]:
    """Append committed snapshots still in the Lobby outbox to ``gm:lobby_events`` (idempotent)."""
    return {"appended": resources().gamemaster.relay_lobby()}


@galaxy_task(TaskName.GM_REPAIR_HEALTH_EVENT_ORDER, acks_late=True)
def repair_health_event_order(self: Task) -> dict[str, Any]:
    """Re-apply, from the stream, the games whose handed-on entries never arrived (idempotent).

    Runs whatever the health-event queue holds: a game counts as stalled by its
    own age (nothing applied for ``GALAXY_ORDER_REPAIR_AFTER_SECONDS`` while
    entries of it were handed on before that), so steady load elsewhere cannot
    starve its repair; at most ``GALAXY_ORDER_REPAIR_MAX_GAMES`` per run.  A
    queued copy of a repaired entry is a duplicate later and changes nothing.
    """
    return resources().gamemaster.repair_order()


@galaxy_task(TaskName.GM_HEALTH_EVENTS_BRIDGE, **LONG_RUNNING_OPTIONS)
def health_events_bridge(self: Task, max_seconds: float | None = None) -> dict[str, Any]:
    """Run the ``runtime:health_events`` bridge until shutdown or lease loss (long-running).

    Belongs on the long-running queue (a ``-P threads`` worker).  Acked on
    receipt: the lease, not redelivery, keeps it alive.  ``max_seconds`` bounds
    a run (tests, ad-hoc catch-ups); the supervisor starts the next one.
    """
    return resources().gamemaster.health_events_bridge().run(stop_condition(max_seconds)).as_dict()


__all__ = [
    "apply_health_event",
    "apply_health_events_chunk",
    "health_events_bridge",
    "relay_lobby_events",
    "repair_health_event_order",
]
