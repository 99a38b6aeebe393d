"""How a stream bridge turns entries read from a stream into work for the pools.

Per-partition order (per game, for ``runtime:health_events``) is what the
consumers must preserve, so every handoff names the previous entry of its
partition; a consumer applies an entry only after that one.  The plan is a
pure function of the entries and the stored map, so a bridge that crashes
before saving its offset re-derives exactly the same handoffs on restart and
the duplicates it sends are recognised as such.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StreamEntry:
    """One entry read from a Redis stream."""

    entry_id: str
    fields: dict[str, str]


@dataclass(frozen=True)
class Handoff:
    """An entry as the bridge hands it on: with the previous entry id of the same partition."""

    entry_id: str
    fields: dict[str, str]
    prev_entry_id: str | None

    def as_args(self) -> list[object]:
        """JSON-friendly task arguments (readable in Flower)."""
        return [self.entry_id, self.fields, self.prev_entry_id]


PartitionOf = Callable[[Mapping[str, str]], str | None]


def plan_handoffs(
    entries: Sequence[StreamEntry],
    last_by_partition: Mapping[str, str],
    partition_of: PartitionOf,
) -> tuple[list[Handoff], dict[str, str]]:
    """The handoffs for ``entries`` and the partitions whose last entry they move."""
    moved: dict[str, str] = {}
    handoffs: list[Handoff] = []
    for entry in entries:
        key = partition_of(entry.fields)
        prev = None
        if key is not None:
            prev = moved.get(key, last_by_partition.get(key))
            moved[key] = entry.entry_id
        handoffs.append(Handoff(entry.entry_id, entry.fields, prev))
    return handoffs, moved


def chunk_by_partition(
    handoffs: Sequence[Handoff],
    partition_of: PartitionOf,
    *,
    partitions: int,
    chunk_size: int,
) -> list[list[Handoff]]:
    """Group handoffs into chunks of about ``chunk_size`` so that no two chunks share a game.

    Chunks of one batch then run in parallel without waiting on each other.  A
    game's entries stay together and in stream order (a game with more entries
    than ``chunk_size`` gets a bigger chunk rather than being split); games are
    spread over ``partitions`` by a stable hash and packed whole into chunks.
    """
    by_key: dict[str | None, list[Handoff]] = {}
    for handoff in handoffs:
        by_key.setdefault(partition_of(handoff.fields), []).append(handoff)
    buckets: dict[int, list[list[Handoff]]] = {}
    for key, group in by_key.items():
        slot = -1 if key is None else zlib.crc32(key.encode()) % partitions
        buckets.setdefault(slot, []).append(group)
    chunks: list[list[Handoff]] = []
    for slot in sorted(buckets):
        current: list[Handoff] = []
        for group in buckets[slot]:
            if current and len(current) + len(group) > chunk_size:
                chunks.append(current)
                current = []
            current.extend(group)
        if current:
            chunks.append(current)
    return chunks
