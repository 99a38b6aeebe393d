"""The one rule a new game id follows, the same for the Game Master and the jobs (SPEC §5 "Bad input").

A game id names its engine container (``galaxy-game-{game_id}``: Docker takes
``[A-Za-z0-9][A-Za-z0-9_.-]*``) and is put in the engine's endpoint
(``GALAXY_ENGINE_ENDPOINT_TEMPLATE``), possibly as its host, where it must be
one DNS label: at most 63 characters of letters, digits and ``-``, neither
first nor last a ``-``.  The rule is the intersection, so any id it accepts
works in both places.

The rule is for ids nobody knows yet.  A game that already has a record (one
created before the rule, or by hand) keeps being served whatever its id: its
entries and jobs are never refused for the id alone.  What can never be
stored at all (not text, :data:`~galaxy_tasks.domain.stream_fields.MAX_GAME_ID_BYTES`)
is a different matter: no record can have such an id.
"""

from __future__ import annotations

import re

MAX_GAME_ID_LENGTH = 63
"""One DNS label; a container name would take more."""

_RULE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

GAME_ID_RULE = f"1 to {MAX_GAME_ID_LENGTH} ASCII letters, digits and '-', starting and ending with a letter or digit"
"""The rule in words, for error messages and docs/operations.md."""


def game_id_problem(game_id: str) -> str | None:
    """Why ``game_id`` cannot be a new game's id (``None`` when it can)."""
    if _RULE.fullmatch(game_id):
        return None
    shown = game_id if len(game_id) <= 80 else f"{game_id[:77]}..."
    return f"game_id {shown!r} breaks the game-id rule: {GAME_ID_RULE}"
