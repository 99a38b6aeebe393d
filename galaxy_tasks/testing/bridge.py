"""The stream bridge's Redis and Celery ports in memory: the stream, its state, its lease, the dispatcher.

They stand in for ``adapters/redis`` and ``adapters/celery_dispatch`` with the
semantics the bridge relies on: :class:`FakeStreamReader` is an append-only
stream with Redis's ``XTRIM``/``XDEL`` bookkeeping (``entries-added``,
``max-deleted-entry-id``); :class:`FakeBridgeStateStore` merges the
per-partition map as the Lua script's ``HSET`` does and refuses to save once
its :class:`FakeLease` (``SET NX PX``) is lost; :class:`FakeEntryDispatcher`
records what the broker would hold.  :class:`FakeLeaseView` is the
supervisor's read of the same leases, with launch markers that expire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from galaxy_tasks.domain.errors import BrokerUnavailable, RedisUnavailable
from galaxy_tasks.domain.handoffs import Handoff, StreamEntry
from galaxy_tasks.domain.stream_ids import BEGINNING, StreamId, is_after
from galaxy_tasks.ports.streams import BridgeState, StreamInfo
from galaxy_tasks.testing.clock import FakeClock


class FakeStreamReader:
    """``StreamReader`` over a list: an append-only stream with Redis's XTRIM / XDEL bookkeeping.

    Ids are ``<ms>-0`` with ``ms`` counting up from ``first_ms`` (small numbers by
    default, so tests cross the ``9-0`` → ``10-0`` boundary that string
    comparison gets wrong).
    """

    def __init__(self, *, exists: bool = True, first_ms: int = 1) -> None:
        self.entries: list[StreamEntry] = []
        self.exists = exists
        self.entries_added = 0
        self.last_entry_id = BEGINNING
        self.max_deleted_entry_id = BEGINNING
        self.fail_reads = 0
        self.reads: list[tuple[str, int]] = []
        self._next_ms = first_ms

    def append(self, fields: Mapping[str, str], entry_id: str | None = None) -> str:
        if entry_id is None:
            entry_id = f"{self._next_ms}-0"
        if not is_after(entry_id, self.last_entry_id):
            raise ValueError(f"{entry_id} is not after {self.last_entry_id}")
        self._next_ms = StreamId.parse(entry_id).ms + 1
        self.entries.append(StreamEntry(entry_id, dict(fields)))
        self.exists = True
        self.entries_added += 1
        self.last_entry_id = entry_id
        return entry_id

    def read_before(self, offset: str, limit: int) -> list[StreamEntry]:
        older = [e for e in self.entries if not is_after(e.entry_id, offset)]
        return list(reversed(older))[:limit]

    def append_many(self, many: Iterable[Mapping[str, str]]) -> list[str]:
        return [self.append(fields) for fields in many]

    def trim(self, maxlen: int) -> None:
        """XTRIM MAXLEN: drop the oldest entries beyond ``maxlen``.

        As in Redis, trimming leaves ``max-deleted-entry-id`` alone (only XDEL
        moves it); ``entries-added`` minus ``length`` tells what went.
        """
        self.entries = self.entries[max(len(self.entries) - maxlen, 0) :]

    def delete(self, entry_id: str) -> None:
        """XDEL of one entry: moves ``max-deleted-entry-id``."""
        kept = [e for e in self.entries if e.entry_id != entry_id]
        if len(kept) < len(self.entries) and is_after(entry_id, self.max_deleted_entry_id):
            self.max_deleted_entry_id = entry_id
        self.entries = kept

    def read_after(self, offset: str, count: int, block_ms: int) -> list[StreamEntry]:
        self.reads.append((offset, count))
        if self.fail_reads > 0:
            self.fail_reads -= 1
            raise RedisUnavailable("fake outage")
        return [e for e in self.entries if is_after(e.entry_id, offset)][:count]

    def info(self) -> StreamInfo | None:
        if not self.exists:
            return None
        return StreamInfo(
            length=len(self.entries),
            last_entry_id=self.last_entry_id,
            entries_added=self.entries_added,
            max_deleted_entry_id=self.max_deleted_entry_id,
            first_entry_id=self.entries[0].entry_id if self.entries else None,
        )

    def count_after(self, offset: str, limit: int) -> int:
        return min(sum(1 for e in self.entries if is_after(e.entry_id, offset)), limit)


class FakeLease:
    """``Lease`` in memory.

    ``held_elsewhere`` makes :meth:`acquire` fail; ``renewals_before_loss``
    lets that many renewals succeed and loses the lease on the next one;
    :meth:`lose` takes it away at once (another holder took over).
    """

    def __init__(
        self, holder: str = "test-host:1:abcd", *, held_elsewhere: bool = False, renewals_before_loss: int | None = None
    ) -> None:
        self._holder = holder
        self.held_elsewhere = held_elsewhere
        self.renewals_before_loss = renewals_before_loss
        self.held = False
        self.acquires = 0
        self.renewals = 0
        self.releases = 0

    @property
    def holder(self) -> str:
        return self._holder

    def acquire(self) -> bool:
        self.acquires += 1
        if self.held_elsewhere:
            return False
        self.held = True
        return True

    def renew(self) -> bool:
        if not self.held:
            return False
        if self.renewals_before_loss is not None and self.renewals >= self.renewals_before_loss:
            self.lose()
            return False
        self.renewals += 1
        return True

    def release(self) -> None:
        self.releases += 1
        self.held = False

    def lose(self) -> None:
        self.held = False
        self.held_elsewhere = True


class FakeBridgeStateStore:
    """``BridgeStateStore`` in memory, fenced by an optional :class:`FakeLease`.

    ``save`` merges ``last_by_partition`` into what is stored (``HSET``), as the
    real Lua script does, and refuses to store anything once the lease is gone.
    Like the Redis store, ``load`` trusts the saved ``entries_through_offset``
    only for the offset it was saved with (an operator may move the offset).
    ``on_save`` sees each accepted offset before it is stored.
    """

    def __init__(
        self,
        *,
        offset: str = BEGINNING,
        last_by_partition: Mapping[str, str] | None = None,
        entries_through_offset: int | None = None,
        lease: FakeLease | None = None,
        on_save: Callable[[str], None] | None = None,
    ) -> None:
        self.offset = offset
        self.last_by_partition: dict[str, str] = dict(last_by_partition or {})
        self.entries_through_offset = entries_through_offset
        self._progress_offset: str | None = None if entries_through_offset is None else offset
        self.lag: int | None = None
        self.lease = lease
        self.on_save = on_save
        self.loads = 0
        self.saves: list[tuple[str, dict[str, str], int]] = []
        self.refused_saves = 0
        self.replay_request: str | None = None
        self.replay_checks = 0

    def load(self) -> BridgeState:
        self.loads += 1
        through = self.entries_through_offset if self._progress_offset == self.offset else None
        return BridgeState(self.offset, dict(self.last_by_partition), entries_through_offset=through)

    def save(self, offset: str, last_by_partition: Mapping[str, str], *, lag: int, entries_through_offset: int) -> bool:
        if self.lease is not None and not self.lease.held:
            self.refused_saves += 1
            return False
        if self.on_save is not None:
            self.on_save(offset)
        self.offset = offset
        self.last_by_partition.update(last_by_partition)
        self.lag = lag
        self.entries_through_offset = entries_through_offset
        self._progress_offset = offset
        self.saves.append((offset, dict(last_by_partition), lag))
        return True

    def forget(self, last_by_partition: Mapping[str, str]) -> bool:
        if self.lease is not None and not self.lease.held:
            return False
        for partition, entry_id in last_by_partition.items():
            if self.last_by_partition.get(partition) == entry_id:
                del self.last_by_partition[partition]
        return True

    def apply_replay_request(self) -> str | None:
        self.replay_checks += 1
        if self.replay_request is None or (self.lease is not None and not self.lease.held):
            return None
        self.offset, self.replay_request = self.replay_request, None
        self._progress_offset = None
        return self.offset

    def move_offset_by_hand(self, offset: str) -> None:
        """What an operator does with ``SET``: the saved progress no longer matches."""
        self.offset = offset


class FakeEntryDispatcher:
    """``EntryDispatcher`` that records what the broker would hold.

    ``fail_times`` makes that many calls raise :class:`BackendUnavailable`
    before anything is accepted; ``attempts`` keeps every call's handoffs,
    failed or not; ``on_send`` runs on each accepted call.
    """

    def __init__(self, *, fail_times: int = 0, on_send: Callable[[], None] | None = None) -> None:
        self.fail_times = fail_times
        self.on_send = on_send
        self.attempts: list[list[Handoff]] = []
        self.delivered: list[Handoff] = []
        self.modes: list[str] = []
        self.chunks: list[list[Handoff]] = []
        self.queued: list[int] = []
        """Successive answers of :meth:`waiting` (then 0)."""
        self.waiting_checks = 0

    def _accept(self, handoffs: list[Handoff]) -> None:
        self.attempts.append(handoffs)
        if self.fail_times > 0:
            self.fail_times -= 1
            raise BrokerUnavailable("fake outage")
        if self.on_send is not None:
            self.on_send()
        self.delivered.extend(handoffs)

    def send_each(self, handoffs: Sequence[Handoff]) -> None:
        self._accept(list(handoffs))
        self.modes.append("each")

    def waiting(self) -> int:
        """What the broker holds that no worker took: ``queued`` when set, else none."""
        self.waiting_checks += 1
        return self.queued.pop(0) if self.queued else 0

    def send_chunks(self, chunks: Sequence[Sequence[Handoff]]) -> None:
        self._accept([h for chunk in chunks for h in chunk])
        self.modes.append("chunks")
        self.chunks.extend(list(chunk) for chunk in chunks)

    @property
    def delivered_ids(self) -> list[str]:
        return [h.entry_id for h in self.delivered]


class FakeLeaseView:
    """``LeaseView`` in memory: lease holders, and launch markers that expire on a :class:`FakeClock`."""

    def __init__(self, holders: Mapping[str, str] | None = None, *, clock: FakeClock | None = None) -> None:
        self.holders: dict[str, str] = dict(holders or {})
        self.clock = clock or FakeClock()
        self.markers: dict[str, float] = {}
        self.claims: list[tuple[str, float]] = []

    def holder_of(self, lease_key: str) -> str | None:
        return self.holders.get(lease_key)

    def claim_launch(self, marker_key: str, ttl_seconds: float) -> bool:
        self.claims.append((marker_key, ttl_seconds))
        now = self.clock.now
        expires = self.markers.get(marker_key)
        if expires is not None and expires > now:
            return False
        self.markers[marker_key] = now + ttl_seconds
        return True


if TYPE_CHECKING:  # the fakes must keep matching the protocols they stand in for
    from galaxy_tasks.ports.streams import BridgeStateStore, EntryDispatcher, Lease, LeaseView, StreamReader

    def _conforms() -> None:
        _reader: StreamReader = FakeStreamReader()
        _state: BridgeStateStore = FakeBridgeStateStore()
        _lease: Lease = FakeLease()
        _dispatcher: EntryDispatcher = FakeEntryDispatcher()
        _view: LeaseView = FakeLeaseView()
