"""The stream bridge: one stream, read in order from a stored offset, handed on to the pools.

Written once for every stream the system consumes (``runtime:health_events``
now, the job streams later).  One loop iteration: renew the lease, XREAD a
batch after the offset, plan the handoffs (each naming its partition's
previous entry), give them to the broker, then save the offset — so an entry
is never behind the offset unless the broker holds it.  A crash between the
send and the save re-sends the same handoffs, which the consumers recognise
as duplicates.

When the bridge is far behind (after an outage) it switches to backlog mode:
bigger reads, and one message per chunk of a game partition instead of one per
entry, so catching up is not bound by per-message overhead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from galaxy_tasks import metrics
from galaxy_tasks.domain.errors import TransientError
from galaxy_tasks.domain.handoffs import PartitionOf, chunk_by_partition, plan_handoffs
from galaxy_tasks.domain.stream_ids import BEGINNING, StreamId, is_after
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.streams import BridgeState, BridgeStateStore, EntryDispatcher, Lease, StreamInfo, StreamReader
from galaxy_tasks.service.leased import run_leased

log = get_logger(__name__)

_LAG_SCAN_LIMIT = 10_000_000


REPLAY_SCAN_LIMIT = 100_000
"""How far back a replay looks for each partition's predecessor (entries, read once per replay)."""


@dataclass(frozen=True)
class BridgeTuning:
    batch_size: int
    block_ms: int
    backlog_threshold: int
    backlog_batch_size: int
    backlog_partitions: int
    error_backoff_seconds: float = 0.5
    replay_check_seconds: float = 1.0
    """How often to look for a ``galaxy-tasks replay`` request: a round trip kept off every batch."""
    dispatch_window: int = 0
    """Flow control (0: off): while this many handed-on messages still wait in the broker, hand on
    nothing more; then hand on what waited in chunks when it is more than twice this many entries."""
    forget_after_ms: int = 3_600_000
    """A partition whose last entry handed on is trimmed from the stream and this much older than its
    newest entry is forgotten (its next entry names no predecessor): the map does not grow for ever."""
    forget_check_seconds: float = 60.0
    hold_seconds: float = 0.01
    """How long the bridge waits before looking at the broker again while the window is full."""
    renew_every_seconds: float = 0.0
    """Renew the lease at most this often (0: every round).  While the window is full a round is a
    look at the broker every ``hold_seconds``; renewing each time would be most of the bridge's
    round trips.  Saves stay fenced by the lease whatever this is."""


@dataclass
class BridgeReport:
    """What one run of a bridge did; the long-running task returns it."""

    stream: str
    holder: str
    exit_reason: str = ""
    entries: int = 0
    chunks: int = 0
    offset: str = ""
    lag: int = 0

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class StreamBridge:
    def __init__(
        self,
        *,
        stream: str,
        partition_of: PartitionOf,
        reader: StreamReader,
        state: BridgeStateStore,
        lease: Lease,
        dispatcher: EntryDispatcher,
        tuning: BridgeTuning,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._partition_of = partition_of
        self._reader = reader
        self._state = state
        self._lease = lease
        self._dispatcher = dispatcher
        self._tuning = tuning
        self._sleep = sleep
        self._clock = clock
        self._position = 0  # entries ever added to the stream up to and including the offset
        self._reported_deletion = ""

    def run(self, should_stop: Callable[[], bool]) -> BridgeReport:
        """Run until ``should_stop()``, the lease is lost, or it was held elsewhere."""
        report = BridgeReport(self._stream, self._lease.holder)
        report.exit_reason = run_leased(
            self._lease, lambda: self._loop(report, should_stop), name="bridge", stream=self._stream
        )
        return report

    def _loop(self, report: BridgeReport, should_stop: Callable[[], bool]) -> str:
        offset: str | None = None
        last: dict[str, str] = {}
        next_replay_check = 0.0
        next_forget_check = self._clock() + self._tuning.forget_check_seconds
        next_renewal = 0.0
        while not should_stop():
            try:
                if self._clock() >= next_renewal:
                    if not self._lease.renew():
                        return "lease_lost"
                    next_renewal = self._clock() + self._tuning.renew_every_seconds
                replayed_from = None
                if self._clock() >= next_replay_check:
                    next_replay_check = self._clock() + self._tuning.replay_check_seconds
                    replayed_from = self._state.apply_replay_request()
                if replayed_from is not None:
                    log.warning("bridge_replay", stream=self._stream, offset=replayed_from, previous_offset=offset)
                    metrics.BRIDGE_REPLAYS.labels(self._stream).inc()
                    offset = None  # reload: the stored state is the replay's now
                if offset is None:
                    state = self._state.load()
                    offset, last = state.offset, dict(state.last_by_partition)
                    if replayed_from is not None:
                        last = self._replay_predecessors(offset, last)
                    self._resync_position(state, self._reader.info())
                    log.info("bridge_resumed", stream=self._stream, offset=offset, entries_before_offset=self._position)
                if self._window_full():
                    # The pools are behind: hand on nothing now.  What arrives meanwhile waits in the
                    # stream and goes next in ordered chunks, so a burst never piles up per-event messages.
                    self._sleep(self._tuning.hold_seconds)
                    continue
                info = self._reader.info()
                self._check_trim(offset, info)
                if self._clock() >= next_forget_check:
                    next_forget_check = self._clock() + self._tuning.forget_check_seconds
                    self._forget_gone_partitions(last, info)
                added = 0 if info is None else info.entries_added
                moved = self._step(offset, last, added, report)
                if moved is None:
                    return "lease_lost"
                if moved:
                    offset = report.offset
            except TransientError as exc:
                log.warning("bridge_backend_error", stream=self._stream, error=str(exc))
                offset = None  # reload stored state: the last batch may or may not have been saved
                self._sleep(self._tuning.error_backoff_seconds)
        return "shutdown"

    def _step(self, offset: str, last: dict[str, str], added: int, report: BridgeReport) -> bool | None:
        """One read-dispatch-save round; ``None`` when the save found the lease gone.

        ``added`` is the stream's entries-added counter read just before.
        """
        tuning = self._tuning
        lag = max(added - self._position, 0)
        window = tuning.dispatch_window
        backlog = lag >= tuning.backlog_threshold
        count = tuning.backlog_batch_size if backlog or window else tuning.batch_size
        entries = self._reader.read_after(offset, count, tuning.block_ms)
        if not entries:
            metrics.BRIDGE_LAG.labels(self._stream).set(lag)
            return False
        backlog = backlog or bool(window and len(entries) > 2 * window)
        handoffs, moved = plan_handoffs(entries, last, self._partition_of)
        if backlog:
            chunk_size = max(1, -(-len(handoffs) // tuning.backlog_partitions))
            chunks = chunk_by_partition(
                handoffs, self._partition_of, partitions=tuning.backlog_partitions, chunk_size=chunk_size
            )
            self._dispatcher.send_chunks(chunks)
            report.chunks += len(chunks)
        else:
            self._dispatcher.send_each(handoffs)
        new_offset = entries[-1].entry_id
        self._position += len(entries)
        remaining = max(added - self._position, 0)
        if not self._state.save(new_offset, moved, lag=remaining, entries_through_offset=self._position):
            return None
        last.update(moved)
        report.entries += len(entries)
        report.offset = new_offset
        report.lag = remaining
        mode = "chunk" if backlog else "event"
        metrics.BRIDGE_ENTRIES_DISPATCHED.labels(self._stream, mode).inc(len(entries))
        metrics.BRIDGE_LAG.labels(self._stream).set(remaining)
        log.debug(
            "bridge_batch", stream=self._stream, mode=mode, entries=len(entries), offset=new_offset, lag=remaining
        )
        return True

    def _window_full(self) -> bool:
        """Flow control: as many handed-on messages as the window allows still wait in the broker."""
        window = self._tuning.dispatch_window
        return bool(window) and self._dispatcher.waiting() >= window

    def _forget_gone_partitions(self, last: dict[str, str], info: StreamInfo | None) -> None:
        """Drop partitions whose last entry handed on was trimmed away long ago.

        Such an entry was applied long ago or its loss raised the order repair's
        gap alarm (the trim never passes an entry the repair may still need, and
        the repair judges a game only ``forget_after_ms`` after its last entry),
        so its partition's next entry needs no predecessor.  Junk partitions go
        the same way as finished games.
        """
        if info is None or info.first_entry_id is None:
            return
        first = StreamId.parse(info.first_entry_id)
        horizon = StreamId.parse(info.last_entry_id).ms - self._tuning.forget_after_ms
        gone = {p: e for p, e in last.items() if StreamId.parse(e) < first and StreamId.parse(e).ms < horizon}
        if not gone or not self._state.forget(gone):
            metrics.BRIDGE_PARTITIONS.labels(self._stream).set(len(last))
            return
        for partition in gone:
            del last[partition]
        metrics.BRIDGE_PARTITIONS.labels(self._stream).set(len(last))
        log.info("bridge_partitions_forgotten", stream=self._stream, forgotten=len(gone), kept=len(last))

    def _replay_predecessors(self, offset: str, handed_on: dict[str, str]) -> dict[str, str]:
        """Each partition's last entry at or before a replay's offset: what its first replayed entry names.

        The stored map names the last entry handed on per partition, which may
        now lie *after* the offset.  A replayed entry naming no predecessor would
        overtake that partition's entries still in flight (applied first, it
        makes them look like duplicates, and they are dropped).  So the first
        replayed entry names its true predecessor in the stream: from the map
        when that is at or before the offset, else found by reading the stream
        backwards from the offset (at most :data:`REPLAY_SCAN_LIMIT` entries;
        a partition quiet for longer names none, as nothing of it can still be
        in flight).
        """
        kept = {key: entry for key, entry in handed_on.items() if not is_after(entry, offset)}
        unknown = {key for key, entry in handed_on.items() if is_after(entry, offset)}
        if unknown:
            for entry in self._reader.read_before(offset, REPLAY_SCAN_LIMIT):
                key = self._partition_of(entry.fields)
                if key in unknown:
                    kept[key] = entry.entry_id
                    unknown.discard(key)
                    if not unknown:
                        break
        log.info("bridge_replay_predecessors", stream=self._stream, offset=offset, named=len(kept), none=len(unknown))
        return kept

    def _resync_position(self, state: BridgeState, info: StreamInfo | None) -> None:
        """Set how many entries the stream ever had up to the offset (the base of lag and trim checks)."""
        if state.entries_through_offset is not None:
            self._position = state.entries_through_offset
        elif state.offset == BEGINNING or info is None:
            self._position = 0
        else:  # offset moved by hand: count what is still after it
            self._position = info.entries_added - self._reader.count_after(state.offset, _LAG_SCAN_LIMIT)

    def _check_trim(self, offset: str, info: StreamInfo | None) -> None:
        """Say loudly when entries after the offset were removed before they were handed on.

        XTRIM removes the oldest entries: more removed than the entries up to our
        offset means some we never handed on are gone.  XDEL shows up as a
        max-deleted id past the offset.
        """
        if info is None:
            return
        removed = info.entries_added - info.length
        lost = removed - self._position
        deleted = info.max_deleted_entry_id
        deleted_after = is_after(deleted, offset) and deleted != self._reported_deletion
        if lost <= 0 and not deleted_after:
            return
        if deleted_after:
            self._reported_deletion = deleted
        metrics.BRIDGE_TRIM_GAPS.labels(self._stream).inc()
        log.error(
            "bridge_stream_trimmed_past_offset",
            stream=self._stream,
            offset=offset,
            entries_lost=max(lost, 0),
            max_deleted_entry_id=deleted,
            hint="entries after the stored offset were removed before they were handed on",
        )
        self._position = max(self._position, removed)
