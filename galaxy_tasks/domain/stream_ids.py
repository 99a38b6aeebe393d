"""Redis stream entry ids as comparable values.

Ordering decisions (duplicate detection, predecessor checks, trim detection)
compare entry ids; comparing the strings would put ``10-0`` before ``9-0``.
"""

from __future__ import annotations

from typing import NamedTuple

BEGINNING = "0-0"


class StreamId(NamedTuple):
    """A parsed ``<ms>-<seq>`` id; tuple order is stream order."""

    ms: int
    seq: int

    @classmethod
    def parse(cls, raw: str) -> StreamId:
        ms_text, sep, seq_text = raw.partition("-")
        if not sep:
            seq_text = "0"
        try:
            ms, seq = int(ms_text), int(seq_text)
        except ValueError:
            raise ValueError(f"not a stream entry id: {raw!r}") from None
        if ms < 0 or seq < 0:
            raise ValueError(f"not a stream entry id: {raw!r}")
        return cls(ms, seq)

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


def is_after(candidate: str, reference: str) -> bool:
    """True when ``candidate`` comes strictly after ``reference`` in a stream."""
    return StreamId.parse(candidate) > StreamId.parse(reference)
