"""Decoding ``runtime:health_events`` entries with the seed's validation (seed ``001``).

Only the three fields the consumer acts on are checked; ``container_id`` and
``details`` are RTM's business and unknown extra fields are ignored (SPEC §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from galaxy_tasks.domain.errors import MalformedEntry

FIELD_GAME_ID = "game_id"
FIELD_EVENT_TYPE = "event_type"
FIELD_OCCURRED_AT_MS = "occurred_at_ms"


@dataclass(frozen=True)
class HealthEvent:
    """The part of a health entry the Game Master reads."""

    game_id: str
    event_type: str
    occurred_at_ms: int


def game_id_of(fields: Mapping[str, str]) -> str | None:
    """The entry's game id when it has a usable one, else ``None``.

    The bridge orders entries per game with this, so it must agree with
    :func:`decode_health_event` on which entries belong to a game.
    """
    game_id = fields.get(FIELD_GAME_ID, "")
    return game_id if game_id.strip() else None


def decode_health_event(fields: Mapping[str, str]) -> HealthEvent:
    """Validate ``fields`` and return the event, or raise :class:`MalformedEntry`."""
    game_id = game_id_of(fields)
    if game_id is None:
        raise MalformedEntry("missing game_id")
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
    return HealthEvent(game_id=game_id, event_type=event_type, occurred_at_ms=occurred_at_ms)


def _parse_int64(raw: str) -> int:
    """Parse like Go's ``strconv.ParseInt(raw, 10, 64)``: optional sign, ASCII digits only."""
    body = raw[1:] if raw[:1] in "+-" else raw
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError(f"{raw!r} is not a decimal integer")
    value = int(raw)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{raw!r} is out of range")
    return value
