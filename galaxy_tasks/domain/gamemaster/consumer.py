"""One health entry applied to one game, as a pure function (seed ``001`` ``HandleMessage``).

The Celery pipeline spreads entries over many processes, so the seed's loop
gains two checks before its own logic (SPEC §5 "GM"):

* **order** — an entry carries the id of the previous entry of the same game
  (the bridge knows it).  If that predecessor's effect is not committed yet the
  entry must *wait*: applying ``probe_failed`` before ``container_exited`` would
  leave the game ``running`` for good.
* **exactly once** — an entry at or before the game's cursor was applied
  already and is a *duplicate*.

Everything else is the seed: decode, plan, CAS with fall-back to a
summary-only update, debounce on the last published summary, snapshot from
the row after the write.  The store holds the record locked while this runs,
so checking the source status here *is* the compare-and-swap.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from galaxy_tasks.domain.errors import MalformedEntry
from galaxy_tasks.domain.gamemaster.entries import decode_health_entry
from galaxy_tasks.domain.gamemaster.plans import plan_for, should_publish
from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord, LobbySnapshot
from galaxy_tasks.domain.gamemaster.statuses import Transition
from galaxy_tasks.domain.stream_ids import is_after


class Outcome(StrEnum):
    """What became of one entry; the skip reasons double as metric labels."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    PARKED = "parked"
    """Its game's previous entry is not applied yet: stored (parked) and applied with it."""
    SKIPPED_MALFORMED = "malformed"
    SKIPPED_UNKNOWN_TYPE = "unknown_event_type"
    SKIPPED_UNKNOWN_GAME = "unknown_game"

    @property
    def is_skip(self) -> bool:
        return self in _SKIPS

    @property
    def consumes(self) -> bool:
        """Whether the entry is done with (its cursor moves, or it never had one)."""
        return self not in (Outcome.DUPLICATE, Outcome.PARKED)


_SKIPS = frozenset({Outcome.SKIPPED_MALFORMED, Outcome.SKIPPED_UNKNOWN_TYPE, Outcome.SKIPPED_UNKNOWN_GAME})


class Readiness(StrEnum):
    """Where an entry stands against its game's cursor."""

    READY = "ready"
    DUPLICATE = "duplicate"
    WAIT = "wait"


def readiness(entry_id: str, prev_entry_id: str | None, cursor: str | None) -> Readiness:
    """Decide whether ``entry_id`` may be applied now.

    ``prev_entry_id`` is the previous entry of the same game in the stream, or
    ``None`` when the bridge saw none; ``cursor`` is the last applied entry.
    """
    if cursor is not None and not is_after(entry_id, cursor):
        return Readiness.DUPLICATE
    if prev_entry_id is None:
        return Readiness.READY
    if cursor is None or is_after(prev_entry_id, cursor):
        return Readiness.WAIT
    return Readiness.READY


@dataclass(frozen=True)
class Step:
    """The result of folding one entry into a game's state."""

    outcome: Outcome
    cursor: ConsumerCursor
    record: GameRecord | None
    transition: Transition | None = None
    snapshot: LobbySnapshot | None = None
    detail: str = ""

    @property
    def record_changed(self) -> bool:
        return self.outcome is Outcome.APPLIED


def fold_entry(
    *,
    entry_id: str,
    fields: dict[str, str],
    prev_entry_id: str | None,
    cursor: ConsumerCursor,
    record: GameRecord | None,
    now_ms: int,
) -> Step:
    """Apply one entry of ``cursor.game_id`` to the locked ``record``."""
    ready = readiness(entry_id, prev_entry_id, cursor.last_entry_id)
    if ready is Readiness.DUPLICATE:
        return Step(Outcome.DUPLICATE, cursor, record)
    if ready is Readiness.WAIT:
        return Step(Outcome.PARKED, cursor, record, detail=f"waiting for {prev_entry_id}")
    advanced = replace(cursor, last_entry_id=entry_id)

    try:
        event = decode_health_entry(fields)
    except MalformedEntry as exc:
        return Step(Outcome.SKIPPED_MALFORMED, advanced, record, detail=str(exc))
    plan = plan_for(event.event_type)
    if plan is None:
        return Step(Outcome.SKIPPED_UNKNOWN_TYPE, advanced, record, detail=event.event_type)
    if record is None:
        return Step(Outcome.SKIPPED_UNKNOWN_GAME, advanced, record, detail=event.event_type)

    transition = plan.transition
    if transition is not None and record.status == transition.source:
        written = replace(record, status=transition.target, engine_health=plan.summary)
    else:
        transition = None
        written = replace(record, engine_health=plan.summary)

    if not should_publish(
        status_changed=transition is not None,
        summary=plan.summary,
        last_published=cursor.last_published_summary,
    ):
        return Step(Outcome.APPLIED, advanced, written, transition)
    snapshot = LobbySnapshot.of(written, now_ms)
    published = replace(advanced, last_published_summary=plan.summary, lobby_seq=cursor.lobby_seq + 1)
    return Step(Outcome.APPLIED, published, written, transition, snapshot)
