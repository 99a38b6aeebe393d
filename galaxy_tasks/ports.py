"""The ports of galaxy_tasks: what the service layer needs from the outside world.

Each port is a small ``typing.Protocol``; adapters named after their
technology implement them (``adapters/postgres``, ``adapters/redis``,
``adapters/celery_dispatch``) and :mod:`galaxy_tasks.testing` ships the
in-memory doubles the unit tests use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord, QueuedSnapshot
from galaxy_tasks.domain.handoffs import Handoff, StreamEntry
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.inspect import InspectBaseline, InspectObservation
from galaxy_tasks.domain.rtmanager.job_order import JobOrder, QueuedJob
from galaxy_tasks.domain.rtmanager.jobs import (
    ContainerView,
    EngineIsolation,
    JobKind,
    JobResult,
    RecordStatus,
    RecordView,
)
from galaxy_tasks.domain.stream_ids import StreamId


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


@dataclass(frozen=True)
class LockedGames:
    """What one transaction holds after locking its games: cursors, records, parked entries.

    ``records`` lacks the games without a runtime record; ``parked`` lacks the
    games with nothing parked.
    """

    cursors: dict[str, ConsumerCursor]
    records: dict[str, GameRecord]
    parked: dict[str, list[Handoff]]


@dataclass(frozen=True)
class ConsumerWrites:
    """Everything one health-consumer transaction writes, committed together."""

    now_ms: int
    records: Sequence[GameRecord] = ()
    cursors: Sequence[ConsumerCursor] = ()
    snapshots: Sequence[QueuedSnapshot] = ()
    park: Sequence[Handoff] = ()
    """Entries that wait for their predecessor (replacing a stored copy)."""
    unpark: Sequence[tuple[str, str]] = ()
    """``(game_id, entry_id)`` pairs to remove from the parking."""


class HealthConsumerUnitOfWork(Protocol):
    """One transaction of the Game Master health consumer: lock, then write and commit.

    Two calls rather than one per table, so an adapter can keep a transaction
    at a couple of round trips: the per-event task runs one per entry.
    Leaving the ``with`` block without :meth:`commit` rolls everything back.
    """

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def lock(self, game_ids: Sequence[str]) -> LockedGames:
        """Create missing cursors; lock every cursor, then every existing record, in game-id order.

        The parked entries are read after the cursor locks are granted, so an
        entry parked by the transaction that held a lock is seen.  A cursor is
        created only for an id that follows the game-id rule
        (:mod:`galaxy_tasks.domain.game_ids`) or whose game has a record or a
        cursor already: a game missing from the result has none of them, and
        nothing may be written for it (junk ids leave no state behind).
        """
        ...

    def commit(self, writes: ConsumerWrites) -> Sequence[OutboxEntry]:
        """Write records, cursors, outbox rows and parking changes, and commit them atomically.

        Returns the Lobby outbox rows committed (``writes.snapshots`` with their identities).
        """
        ...


@dataclass(frozen=True)
class OutboxEntry:
    """A committed outbox row: the ``seq``-th entry of its game for the outbox's stream.

    ``uid`` is the row's own identity and ``prev_uid`` that of the game's row
    before it ("": the first of its chain, or a row that predates identities).
    Numbers repeat when the database goes back in time (a restore, a failover
    to a lagging standby); identities never do, so "next" is judged by them.
    """

    game_id: str
    seq: int
    fields: Mapping[str, str]
    uid: str = ""
    prev_uid: str = ""


class StreamOutbox(Protocol):
    """An outbox to a Redis stream, seen by its publishers: right after commit, and the periodic relay."""

    @property
    def label(self) -> str:
        """How logs and metrics name it (the contract's ``OutboxNames.label``)."""
        ...

    def publish_committed(self, entries: Sequence[OutboxEntry]) -> tuple[int, list[str]]:
        """Append the committed ``entries`` that are next in their game's sequence, without locks.

        Returns how many were appended and the games whose entries had to be
        left to :meth:`relay_games` (an earlier entry of theirs is not out yet).
        """
        ...

    def relay_games(self, game_ids: Sequence[str], *, wait_for_locks: bool) -> int:
        """Under the games' locks, append their rows not yet appended, in order, then delete the rows."""
        ...

    def scan_page(self, after: int, limit: int) -> OutboxPage:
        """Read the ``limit`` rows after id ``after`` (no locks): the games :meth:`relay_games` would change."""
        ...

    def backlog(self) -> int:
        """Rows not appended yet, counted over the whole outbox (for ``galaxy-tasks status``)."""
        ...

    def forget_idle_games(self, idle_ms: int, batch: int) -> int:
        """Forget the marks of up to ``batch`` games with no rows left and none relayed for ``idle_ms``.

        Their next row is then appended under its game's lock like a first one. Returns how many.
        """
        ...

    def append_once(self, key: str, fields: Mapping[str, str]) -> bool:
        """Append an entry that belongs to no game's sequence, once per ``key`` (remembered for a day)."""
        ...

    def enforce_retention(self) -> RetentionReport | None:
        """Drop the stream's entries older than its retention, never one a consumer group has not
        read; ``None`` for a stream kept whole."""
        ...


@dataclass(frozen=True)
class OutboxPage:
    """One page of an outbox, read by the periodic sweep."""

    games: list[str]
    """Games a locked visit would change: rows to append, or rows old enough to delete."""
    unappended: int
    """Rows of the page not on the stream yet."""
    next_after: int
    """The id the next page starts after; 0 once the page reached the end of the outbox."""


@dataclass(frozen=True)
class RetentionReport:
    """What one retention pass over a stream did and saw."""

    retention_seconds: float
    trimmed: int
    oldest_entry_age_seconds: float | None
    """How far back the stream goes now (``None``: empty)."""
    unread_ages_seconds: Mapping[str, float]
    """Per consumer group with entries it has not read (or not acknowledged): how old the oldest is."""


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


# --------------------------------------------------------------------------- Runtime Manager


@dataclass(frozen=True)
class RunningRecord:
    """A ``rtmanager.runtime_records`` row in status ``running``."""

    game_id: str
    container_id: str
    engine_endpoint: str
    down_seq: int = 0
    """The game's current down period (the number of the down event that began it); 0 when it is not down."""
    death_exit_code: int | None = None
    """Of an ``exited`` record: the exit code of the death recorded for it (``None``: not known)."""


@dataclass(frozen=True)
class ListedContainer:
    """One row of the filtered container list: what a sweep can tell without an inspect."""

    container_id: str
    game_id: str
    state: str
    status: str
    """Docker's human status, e.g. ``Up 5 minutes (unhealthy)``, ``Restarting (1) 2 seconds ago``."""


class RunningRecords(Protocol):
    def running(self) -> list[RunningRecord]: ...

    def exited(self) -> list[RunningRecord]:
        """Records in status ``exited``: their container died for good, as far as anyone saw."""
        ...

    def running_container(self, game_id: str) -> str | None:
        """The current container of the game's record while the record is ``running``; ``None`` otherwise.

        Only that container speaks for the game (SPEC §5 "RTM: convergence").
        """
        ...


class ContainerRuntime(Protocol):
    """The Docker Engine, for the health sweeps."""

    def list_managed(self) -> dict[str, ListedContainer]:
        """Every managed container, running or not, by container id (one API call)."""
        ...

    def inspect(self, container_id: str) -> InspectObservation | None:
        """``None`` when the container does not exist."""
        ...


class InspectBaselineStore(Protocol):
    """Per-game inspect baselines shared by every worker."""

    def get(self, game_id: str) -> InspectBaseline | None: ...

    def all(self) -> dict[str, InspectBaseline]: ...

    def put(self, game_id: str, baseline: InspectBaseline) -> None: ...

    def drop(self, game_ids: Iterable[str]) -> int:
        """Forget the baselines of ``game_ids``; how many went."""
        ...

    def ack_restart(self, container_id: str) -> None:
        """The events listener published a crash of ``container_id`` that Docker restarts."""
        ...

    def acked_restarts(self, container_id: str) -> int:
        """How many crashes of ``container_id`` the listener published."""
        ...


# --------------------------------------------------------------------------- Runtime Manager jobs


@dataclass(frozen=True)
class EngineSpec:
    """Everything Docker needs to run one game's engine container."""

    name: str
    game_id: str
    image_ref: str
    engine_endpoint: str
    network: str
    memory_limit: str
    nano_cpus: int
    restart_policy: Mapping[str, object]
    pull_missing_image: bool
    docker_host: str = ""
    """``GALAXY_DOCKER_HOST_NAME`` of this host (labels the container); empty with a single host."""
    isolation: EngineIsolation = field(default_factory=EngineIsolation)


class EngineContainers(Protocol):
    """The Docker Engine, for the start and stop jobs.

    Docker being unreachable raises ``BackendUnavailable`` (the job retries it
    for a bounded time); a definite refusal raises ``JobFailed``.
    """

    def find(self, name: str) -> ContainerView | None: ...

    def replace(self, spec: EngineSpec) -> str:
        """Remove any container named ``spec.name``, then create and start a new one; its id.

        A container that fails to start is removed again: a failed start leaves nothing behind.
        """
        ...

    def stop_and_remove(self, container_id: str, timeout_seconds: float) -> None:
        """Stop (SIGTERM, then SIGKILL after the timeout) and remove; a missing container is fine."""
        ...


@dataclass(frozen=True)
class FinishedJob:
    """What a finished job leaves in PostgreSQL, committed together."""

    job_id: str
    kind: JobKind
    result: JobResult
    started_at_ms: int
    finished_at_ms: int
    source_entry_id: str | None
    image_ref: str = ""
    reason: str = ""
    record: RecordView | None = None
    """The game's runtime record as the job leaves it (``None``: untouched)."""
    health_event: HealthEvent | None = None
    """``container_started`` of a fresh start."""
    order: JobOrder | None = None
    """The job's place in its game's order: the game's applied order moves up to it (``None``: outside it)."""


@dataclass(frozen=True)
class CommittedJob:
    result_entry: OutboxEntry
    health_entry: OutboxEntry | None


@dataclass(frozen=True)
class Claim:
    """A job's claim on its game: committed before Docker is touched, fenced by its epoch."""

    job: QueuedJob
    epoch: int
    record: RecordView | None
    """The game's runtime record when the claim was taken."""
    applied: JobOrder
    """The place in the game's order of its newest job applied so far."""


class Busy:
    """Another job holds the game's claim and has not overrun its bound: it runs the game's queue."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id


@dataclass(frozen=True)
class StaleClaim:
    """A claim older than the jobs' bound: its job died or overran (SPEC §5: marks never stick)."""

    game_id: str
    job_id: str
    kind: JobKind
    epoch: int
    claimed_ms: int
    image_ref: str
    record: RecordView | None
    prev_status: str | None
    """The record status the job's mark replaced (``None``: it made no mark)."""


@dataclass(frozen=True)
class ClaimedRecord:
    """A record in a transitional status, with the claim that marked it (``galaxy-tasks status``)."""

    game_id: str
    status: str
    job_id: str | None
    claimed_ms: int | None


class JobQueue(Protocol):
    """The jobs' PostgreSQL side: the per-game queue, the claim, and each job's committed outcome.

    No transaction stays open across a Docker call: claiming, marking and
    finishing are short transactions, the last two fenced by the claim's epoch.
    """

    def enqueue(self, jobs: Sequence[QueuedJob]) -> int:
        """Queue jobs handed on (once per job id: a job queued or answered before is not queued again)."""
        ...

    def claim_next(self, game_id: str, *, bound_seconds: float) -> Claim | Busy | None:
        """Claim the game for its lowest queued job; ``Busy`` when a live claim holds it, ``None`` when its
        queue is empty (the claim then is released)."""
        ...

    def release(self, claim: Claim) -> None:
        """Give the claim up without answering its job (it stays queued)."""
        ...

    def drop(self, claim: Claim) -> None:
        """Take an already answered job out of the queue (a redelivery) and release the claim."""
        ...

    def mark(self, claim: Claim, status: RecordStatus) -> bool:
        """Set the record's transitional status, committed at once; ``False``: the claim was lost."""
        ...

    def put_back(self, claim: Claim) -> bool:
        """Set the record's status back to what it was when the claim was taken (undo a mark); ``False``: the
        claim was lost."""
        ...

    def finish(self, claim: Claim, job: FinishedJob) -> CommittedJob | None:
        """Record, log row, result (and health event), applied key, queue row and claim, in one commit;
        ``None`` when the claim was lost (nothing is written)."""
        ...

    def has_game(self, game_id: str) -> bool:
        """Whether the game has a runtime record or job history (its id is served whatever the rule says)."""
        ...

    def finished_result(self, job_id: str) -> JobResult | None:
        """The result of ``job_id`` if it finished before."""
        ...

    def known_jobs(self, job_ids: Sequence[str]) -> set[str]:
        """Which of these jobs are queued or answered."""
        ...

    def log_outside_game(self, job: FinishedJob) -> tuple[JobResult, bool]:
        """Log a job that holds no game (an invalid request of a game without history), once per job id.

        Returns the result as logged (an earlier run's, when there was one) and whether this call logged it.
        """
        ...

    def stale_claims(self, *, bound_seconds: float, limit: int) -> list[StaleClaim]: ...

    def clear_stale(self, stale: StaleClaim, record: RecordView | None) -> bool:
        """Clear a stale claim (a new epoch fences its job) and write ``record`` if given; ``False`` when the
        claim moved on meanwhile."""
        ...

    def unclaimed_games(self, *, queued_before_seconds: float, limit: int) -> list[str]:
        """Games with a job queued that long and no live claim: their job's message was lost."""
        ...

    def transitional(self) -> list[ClaimedRecord]: ...


class FollowUps(Protocol):
    """Work a sweep or the events listener asks this Docker host's workers for (``rtmanager.docker[.<host>]``).

    ``expires_seconds``: how long the request stays worth running (``None``: until it runs).
    """

    def inspect(self, game_id: str, container_id: str, *, down_seq: int = 0, expires_seconds: float | None) -> None:
        """``rtmanager.inspect_container``; ``down_seq``: the game's down period, when its recovery is in question."""
        ...

    def probe(
        self,
        game_id: str,
        container_id: str,
        endpoint: str,
        *,
        down_seq: int = 0,
        delay_seconds: float = 0.0,
        expires_seconds: float | None,
    ) -> None:
        """``rtmanager.probe_engine``, run after ``delay_seconds``."""
        ...

    def reconcile(self, *, expires_seconds: float | None) -> None:
        """``rtmanager.reconcile``: relist Docker now."""
        ...


class Placement(Protocol):
    """What placing a game's jobs on a Docker host reads (several hosts: ``GALAXY_DOCKER_HOSTS``)."""

    def host_of(self, game_id: str) -> str:
        """The Docker host the game's record names (``""``: none, or a game without a record)."""
        ...

    def running_by_host(self) -> dict[str, int]:
        """How many games each Docker host runs."""
        ...


class Forwarder(Protocol):
    """Hands a game's turn to the worker of a Docker host (``""``: the only one)."""

    def send_turn(self, game_id: str, host: str) -> None: ...


class JobStreams(Protocol):
    """What the order of jobs needs from the two job streams in Redis."""

    def now_key(self) -> StreamId:
        """The order key of a job called now (Redis time: the clock of the streams' ids)."""
        ...

    def older_entries(self, game_id: str, key: StreamId, limit: int) -> list[JobOrder] | None:
        """Job entries of ``game_id`` at or before ``key`` that their bridge may not have handed on yet (after its
        stored offset), as job ids and keys; ``None`` when there are more than ``limit`` entries to look at."""
        ...
