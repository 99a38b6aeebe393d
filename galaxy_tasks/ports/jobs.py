"""The start/stop jobs' ports: engine containers, the per-game job queue and its claims, the job
streams' order, and where a game's jobs run (placement, forwarding)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from galaxy_tasks.domain.rtmanager.health import HealthEvent
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
from galaxy_tasks.ports.outbox import OutboxEntry


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
