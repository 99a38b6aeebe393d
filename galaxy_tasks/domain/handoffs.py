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

from galaxy_tasks.ports import Handoff, StreamEntry

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
    """Group handoffs into ordered chunks so that no two chunks share a game.

    Chunks of one batch then run in parallel without waiting on each other;
    within a chunk the stream order is kept.
    """
    buckets: dict[int, list[Handoff]] = {}
    for handoff in handoffs:
        key = partition_of(handoff.fields)
        slot = -1 if key is None else zlib.crc32(key.encode()) % partitions
        buckets.setdefault(slot, []).append(handoff)
    chunks: list[list[Handoff]] = []
    for slot in sorted(buckets):
        bucket = buckets[slot]
        chunks.extend(bucket[i : i + chunk_size] for i in range(0, len(bucket), chunk_size))
    return chunks
