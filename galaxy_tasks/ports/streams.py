"""Streams, stream bridges and the long-running singletons: reading a stream, a bridge's stored
position and lease, handing entries on, and the supervisor's view of the leases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from galaxy_tasks.domain.handoffs import Handoff, StreamEntry


@dataclass(frozen=True)
class StreamInfo:
    """What the bridge needs to know about the stream it reads."""

    length: int
    last_entry_id: str
    entries_added: int
    max_deleted_entry_id: str
    first_entry_id: str | None = None
    """The oldest entry still in the stream (``None``: empty)."""


@dataclass(frozen=True)
class BridgeState:
    """A bridge's stored position: the offset and the last entry handed on per partition.

    ``entries_through_offset`` is the stream's entries-added count up to and
    including the offset, saved with it: lag and trimming are measured against
    it.  ``None`` when unknown (nothing saved yet, or the offset set by hand).
    """

    offset: str
    last_by_partition: dict[str, str]
    entries_through_offset: int | None = None


class StreamReader(Protocol):
    def read_after(self, offset: str, count: int, block_ms: int) -> list[StreamEntry]: ...

    def info(self) -> StreamInfo | None:
        """``None`` while the stream does not exist yet."""
        ...

    def count_after(self, offset: str, limit: int) -> int:
        """How many entries come after ``offset`` (at most ``limit``)."""
        ...

    def read_before(self, offset: str, limit: int) -> list[StreamEntry]:
        """Up to ``limit`` entries at or before ``offset``, newest first."""
        ...


class BridgeStateStore(Protocol):
    def load(self) -> BridgeState: ...

    def save(self, offset: str, last_by_partition: Mapping[str, str], *, lag: int, entries_through_offset: int) -> bool:
        """Store progress only while the lease is still ours; ``False`` if it was not."""
        ...

    def forget(self, last_by_partition: Mapping[str, str]) -> bool:
        """Forget partitions whose last entry handed on is still the one given (only while the lease is ours)."""
        ...

    def apply_replay_request(self) -> str | None:
        """If an operator asked for a replay (``galaxy-tasks replay``), move the offset there now.

        Only while the lease is ours; forgets the saved position (the count of
        entries up to the offset).  The last entry handed on per partition is
        kept: the bridge derives the replay's predecessors from it and the
        stream.  Returns the new offset, or ``None`` when nothing was asked.
        """
        ...


class Lease(Protocol):
    """A cluster-wide, expiring, renewable lock held by one long-running task."""

    @property
    def holder(self) -> str: ...

    def acquire(self) -> bool: ...

    def renew(self) -> bool: ...

    def release(self) -> None: ...


class EntryDispatcher(Protocol):
    """Hands entries on to the worker pools; returns once the broker holds them."""

    def send_each(self, handoffs: Sequence[Handoff]) -> None: ...

    def send_chunks(self, chunks: Sequence[Sequence[Handoff]]) -> None: ...

    def waiting(self) -> int:
        """Messages handed on that no worker has taken yet (the pools' backlog in the broker)."""
        ...


class Singleton(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def task_name(self) -> str: ...

    @property
    def lease_key(self) -> str: ...

    @property
    def queue(self) -> str: ...


class LeaseView(Protocol):
    def holder_of(self, lease_key: str) -> str | None: ...

    def claim_launch(self, marker_key: str, ttl_seconds: float) -> bool: ...


class StreamClock(Protocol):
    """The clock that stamps the streams' entry ids (Redis's): freshness measured on it needs no
    producer's or worker's clock to agree."""

    def now_ms(self) -> int: ...
