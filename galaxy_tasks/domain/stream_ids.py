"""Redis stream entry ids as comparable values.

Ordering decisions (duplicate detection, predecessor checks, trim detection)
compare entry ids; comparing the strings would put ``10-0`` before ``9-0``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

BEGINNING = "0-0"
_ID = re.compile(r"(?P<ms>[0-9]+)(?:-(?P<seq>[0-9]+))?", re.ASCII)


class StreamId(NamedTuple):
    """A parsed ``<ms>-<seq>`` id; tuple order is stream order."""

    ms: int
    seq: int

    @classmethod
    def parse(cls, raw: str) -> StreamId:
        match = _ID.fullmatch(raw)
        if match is None:
            raise ValueError(f"not a stream entry id: {raw!r}")
        return cls(int(match["ms"]), int(match["seq"] or 0))

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


def is_after(candidate: str, reference: str) -> bool:
    """True when ``candidate`` comes strictly after ``reference`` in a stream."""
    return StreamId.parse(candidate) > StreamId.parse(reference)


_MAX_SEQ = 2**64 - 1


def just_before(entry_id: str) -> str:
    """The greatest possible id before ``entry_id``: an offset from which ``entry_id`` is read next."""
    ms, seq = StreamId.parse(entry_id)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    if ms > 0:
        return f"{ms - 1}-{_MAX_SEQ}"
    return BEGINNING
