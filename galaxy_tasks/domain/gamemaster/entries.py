"""Decoding ``runtime:health_events`` entries with the seed's validation (seed ``001``).

Only the three fields the consumer acts on are checked for their values;
``container_id`` and ``details`` are RTM's business, but like every field the
contract lists they must be UTF-8 text (SPEC §5 "Bad input": the reader marks
those that are not, see :mod:`galaxy_tasks.domain.stream_fields`).  Unknown
extra fields are ignored (SPEC §3).  A game id longer than
:data:`MAX_GAME_ID_BYTES` cannot be stored (PostgreSQL's index keys hold about
2,700 bytes), so no record can have one: such an entry is malformed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from galaxy_tasks.domain.errors import MalformedEntry
from galaxy_tasks.domain.health_events import HEALTH_EVENT_FIELDS
from galaxy_tasks.domain.stream_fields import CANNOT_APPLY, MAX_GAME_ID_BYTES, first_unusable

FIELD_GAME_ID = "game_id"
FIELD_EVENT_TYPE = "event_type"
FIELD_OCCURRED_AT_MS = "occurred_at_ms"
_CHECKED_ORDER = (FIELD_GAME_ID, FIELD_EVENT_TYPE, FIELD_OCCURRED_AT_MS, *sorted(HEALTH_EVENT_FIELDS))


@dataclass(frozen=True)
class HealthEntry:
    """The part of a health entry the Game Master reads."""

    game_id: str
    event_type: str
    occurred_at_ms: int


def game_id_of(fields: Mapping[str, str]) -> str | None:
    """The entry's game id when it has a usable one, else ``None``.

    The bridge orders entries per game with this, so it must agree with
    :func:`decode_health_entry` on which entries belong to a game.
    """
    return None if no_game_reason(fields) else fields[FIELD_GAME_ID]


def no_game_reason(fields: Mapping[str, str]) -> str | None:
    """Why the entry names no usable game (``None`` when it does)."""
    if first_unusable(fields, [FIELD_GAME_ID]):
        return "game_id is not UTF-8 text"
    game_id = fields.get(FIELD_GAME_ID, "")
    if not game_id.strip():
        return "missing game_id"
    if len(game_id.encode()) > MAX_GAME_ID_BYTES:
        return f"game_id longer than {MAX_GAME_ID_BYTES} bytes"
    return None


def decode_health_entry(fields: Mapping[str, str]) -> HealthEntry:
    """Validate ``fields`` and return the event, or raise :class:`MalformedEntry`."""
    problem = no_game_reason(fields)
    if problem is not None:
        raise MalformedEntry(problem)
    game_id = fields[FIELD_GAME_ID]
    if CANNOT_APPLY in fields:
        raise MalformedEntry(fields[CANNOT_APPLY])
    unusable = first_unusable(fields, _CHECKED_ORDER)
    if unusable is not None:
        raise MalformedEntry(f"{unusable} is not UTF-8 text")
    event_type = fields.get(FIELD_EVENT_TYPE, "")
    if not event_type.strip():
        raise MalformedEntry("missing event_type")
    raw_ms = fields.get(FIELD_OCCURRED_AT_MS, "")
    if not raw_ms.strip():
        raise MalformedEntry("missing occurred_at_ms")
    try:
        occurred_at_ms = _parse_int64(raw_ms)
    except ValueError as exc:
        raise MalformedEntry(f"invalid occurred_at_ms: {exc}") from None
    if occurred_at_ms <= 0:
        raise MalformedEntry("invalid occurred_at_ms: must be positive")
    return HealthEntry(game_id=game_id, event_type=event_type, occurred_at_ms=occurred_at_ms)


def _parse_int64(raw: str) -> int:
    """Parse like Go's ``strconv.ParseInt(raw, 10, 64)``: optional sign, ASCII digits only."""
    body = raw[1:] if raw[:1] in "+-" else raw
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError(f"{raw!r} is not a decimal integer")
    value = int(raw)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{raw!r} is out of range")
    return value
