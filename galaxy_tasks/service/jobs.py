"""Start and stop jobs of the Runtime Manager (SPEC §5 "RTM: start/stop jobs", seed ``002``).

Every job handed on waits in its game's queue (``JobQueue``) with its order
key, and a game's jobs run one at a time, lowest key first, by whichever
worker *claims* the game: a short committed transaction, so no PostgreSQL
transaction stays open across a Docker call.  Before a job acts, the job
streams are asked whether an older job of its game may still arrive (its
bridge has not handed it on yet): then the game waits for it.  A job whose key
is not above the newest one applied is answered ``superseded``; a job answered
before (a redelivery) is dropped from the queue.  A job decides between a real
start/stop and a replay from the record and the container named
``galaxy-game-{game_id}``, talks to Docker (retrying an unreachable daemon for
a bounded time), and commits the record, its one ``operation_log`` row and its
one job result (a start's ``container_started`` too) in one transaction fenced
by its claim's epoch; the result and the event leave through outboxes.  A job
that dies leaves its claim to expire and its queue row to be run again
(``service/job_repair``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from galaxy_tasks import metrics
from galaxy_tasks.domain.errors import BackendUnavailable, DockerUnavailable, TransientError, ValueRefused
from galaxy_tasks.domain.rtmanager.health import HealthEvent, validate_event
from galaxy_tasks.domain.rtmanager.job_order import QueuedJob, is_superseded, older_than, superseded_result
from galaxy_tasks.domain.rtmanager.jobs import (
    EngineIsolation,
    JobErrorCode,
    JobFailed,
    JobKind,
    JobOutcome,
    JobResult,
    RecordStatus,
    RecordView,
    StartJob,
    StopJob,
    WrongDockerHost,
    check_docker_host,
    container_name,
    engine_endpoint,
    is_start_replay,
    is_stop_replay,
    start_conflict,
)
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.jobs import (
    Busy,
    Claim,
    CommittedJob,
    EngineContainers,
    EngineSpec,
    FinishedJob,
    JobQueue,
    JobStreams,
)
from galaxy_tasks.ports.outbox import StreamOutbox
from galaxy_tasks.service.health_publisher import announce_committed
from galaxy_tasks.service.outbox import after_commit

log = get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class EngineSettings:
    """How engine containers are run (all from ``GALAXY_ENGINE_*``)."""

    endpoint_template: str
    network: str
    memory_limit: str
    cpus: float
    restart_policy: dict[str, object]
    pull_missing_image: bool
    stop_timeout_seconds: float
    docker_host: str = ""
    """``GALAXY_DOCKER_HOST_NAME`` of this worker's Docker host; empty with a single host."""
    isolation: EngineIsolation = field(default_factory=EngineIsolation)


@dataclass(frozen=True)
class JobContext:
    """Where jobs wait, what they act on, and their bounds."""

    queue: JobQueue
    streams: JobStreams
    engines: EngineContainers
    results_outbox: StreamOutbox
    health_outbox: StreamOutbox
    settings: EngineSettings
    docker_retry_seconds: float
    claim_seconds: float = 300.0
    """A claim older than this is its job's no more (``GALAXY_JOB_CLAIM_SECONDS``): the job died or overran."""
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class JobRun:
    job_id: str
    result: JobResult
    already_done: bool = False
    """The job had finished before (a redelivery): nothing was done or published again."""

    def as_dict(self) -> dict[str, object]:
        return {**self.result.as_dict(), "job_id": self.job_id, "already_done": self.already_done}


class DockerRetry:
    """Calls that reach Docker, retried with backoff while the daemon does not answer, up to a deadline."""

    def __init__(self, ctx: JobContext, *, game_id: str, job_id: str) -> None:
        self._ctx = ctx
        self._deadline = ctx.clock() + ctx.docker_retry_seconds
        self._game_id = game_id
        self._job_id = job_id
        self.attempts = 0

    def __call__(self, call: Callable[[], T]) -> T:
        delay = 0.2
        while True:
            try:
                return call()
            except BackendUnavailable as exc:
                if not isinstance(exc, DockerUnavailable):
                    raise
                self.attempts += 1
                left = self._deadline - self._ctx.clock()
                if left <= 0:
                    raise
                wait = min(delay, left)
                log.warning(
                    "job_docker_unavailable_retrying",
                    game_id=self._game_id,
                    job_id=self._job_id,
                    attempt=self.attempts,
                    retry_in_seconds=round(wait, 2),
                    gives_up_in_seconds=round(left, 1),
                    error=exc.detail,
                )
                self._ctx.sleep(wait)
                delay = min(delay * 2, 5.0)


class ClaimLost(TransientError):
    """The job's claim expired and was cleared while it ran: its outcome is not committed.

    The periodic pass put the record straight from what Docker showed; the job
    is still queued and is run again, so it is still answered once.
    """


@dataclass(frozen=True)
class _Outcome:
    result: JobResult
    record: RecordView | None = None
    """The record as the job leaves it; ``None``: untouched."""
    health_event: HealthEvent | None = None


class _Marks:
    """The claim's marks, remembering whether one was made so that a failure can put the status back."""

    def __init__(self, ctx: JobContext, claim: Claim) -> None:
        self._ctx = ctx
        self.claim = claim
        self.marked = False

    @property
    def record(self) -> RecordView | None:
        return self.claim.record

    def mark(self, status: RecordStatus) -> None:
        if self.claim.record is None:
            return
        if not self._ctx.queue.mark(self.claim, status):
            raise ClaimLost(self.claim.job.job_id)
        self.marked = True


Body = Callable[[_Marks, DockerRetry], _Outcome]


@dataclass
class DrainReport:
    """What one turn at a game's queue did (the task returns it)."""

    game_id: str
    runs: list[JobRun]
    state: str = "idle"
    """``idle`` (queue empty), ``busy`` (another job holds the game), ``waiting`` (an older job of the game is
    not handed on yet), ``moved`` (the game lives on another Docker host) or ``claim_lost``."""
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "game_id": self.game_id,
            "state": self.state,
            "detail": self.detail,
            "jobs": [run.as_dict() for run in self.runs],
        }


OLDER_ENTRIES_SCAN_LIMIT = 1000
"""How many not-yet-handed-on job entries a game's turn looks through for an older job of the game."""


def queue_jobs(ctx: JobContext, jobs: Sequence[QueuedJob]) -> int:
    """Queue jobs handed on (by a bridge before it moves its offset, or by a shell call)."""
    return ctx.queue.enqueue(jobs)


def drain_game(ctx: JobContext, game_id: str) -> DrainReport:
    """Run the game's queued jobs, lowest order key first, while this worker holds the game's claim."""
    report = DrainReport(game_id, [])
    while True:
        claim = ctx.queue.claim_next(game_id, bound_seconds=ctx.claim_seconds)
        if claim is None:
            return report
        if isinstance(claim, Busy):
            report.state, report.detail = "busy", claim.job_id
            return report
        try:
            run = _take_turn(ctx, claim, report)
        except ClaimLost:
            log.warning("job_claim_lost", game_id=game_id, job_id=claim.job.job_id)
            report.state = "claim_lost"
            return report
        except TransientError:
            # PostgreSQL, Redis or the broker went away: give the game back at once if it can be
            # reached (the task is retried), else the claim expires and the periodic pass settles it.
            with contextlib.suppress(TransientError):
                ctx.queue.release(claim)
            raise
        if run is None:
            return report
        report.runs.append(run)


def _take_turn(ctx: JobContext, claim: Claim, report: DrainReport) -> JobRun | None:
    """Answer the claimed job, or give the game back (``report`` says why) and return ``None``."""
    waiting_for = _older_job_to_come(ctx, claim.job)
    if waiting_for is not None:
        ctx.queue.release(claim)
        log.info("job_waits_for_older_job", game_id=claim.job.game_id, job_id=claim.job.job_id, older=waiting_for)
        report.state, report.detail = "waiting", waiting_for
        return None
    try:
        check_docker_host(claim.record, ctx.settings.docker_host)
    except WrongDockerHost as exc:
        ctx.queue.release(claim)
        report.state, report.detail = "moved", exc.host
        return None
    return run_claimed(ctx, claim)


def _older_job_to_come(ctx: JobContext, job: QueuedJob) -> str | None:
    """An older job of the game its bridge has not handed on yet (the game waits for it), or ``None``."""
    entries = ctx.streams.older_entries(job.game_id, job.key, OLDER_ENTRIES_SCAN_LIMIT)
    if entries is None:
        return f"more than {OLDER_ENTRIES_SCAN_LIMIT} job entries before {job.key} are not handed on yet"
    older = older_than(job, entries)
    known = ctx.queue.known_jobs([entry.job_id for entry in older]) if older else set()
    missing = [entry.job_id for entry in older if entry.job_id not in known]
    return missing[0] if missing else None


def run_claimed(ctx: JobContext, claim: Claim) -> JobRun:
    """Answer the claimed job: dropped if answered before, ``superseded``, ``invalid_request``, or run."""
    job = claim.job
    done = ctx.queue.finished_result(job.job_id)
    if done is not None:  # a redelivery or a repair of a job answered meanwhile
        ctx.queue.drop(claim)
        return _already_done(job.job_id, job.game_id, done)
    if is_superseded(job, claim.applied):
        return _answer(ctx, claim, lambda marks, docker: _Outcome(superseded_result(job, claim.applied)))
    if job.invalid is not None:
        message = job.invalid
        return _answer(
            ctx, claim, lambda m, d: _Outcome(JobResult.failure(job.game_id, JobErrorCode.INVALID_REQUEST, message))
        )
    the_job = job.as_job()
    if isinstance(the_job, StartJob):
        return _answer(ctx, claim, _start_body(ctx, the_job))
    return _answer(ctx, claim, _stop_body(ctx, the_job))


def _start_body(ctx: JobContext, job: StartJob) -> Body:
    """Start the game's engine, or replay: its live container already runs this image."""

    def body(marks: _Marks, docker: DockerRetry) -> _Outcome:
        record = marks.record
        endpoint = engine_endpoint(ctx.settings.endpoint_template, job.game_id)
        container = docker(lambda: ctx.engines.find(container_name(job.game_id)))
        conflict = start_conflict(record, container, job.image_ref)
        if conflict is not None:
            raise JobFailed(JobErrorCode.CONFLICT, conflict)
        if record is not None and container is not None and is_start_replay(record, container):
            return _Outcome(JobResult.replay(job.game_id, container.container_id, record.engine_endpoint or endpoint))
        if record is not None and record.status == RecordStatus.RUNNING:
            marks.mark(RecordStatus.STARTING)  # its dead container goes on purpose: not a loss to report
        spec = _spec(ctx.settings, job, endpoint)
        container_id = docker(lambda: ctx.engines.replace(spec))
        started = HealthEvent.container_started(job.game_id, container_id, _ms(ctx), image_ref=job.image_ref)
        validate_event(started)
        return _Outcome(
            JobResult.success(job.game_id, container_id, endpoint),
            RecordView(RecordStatus.RUNNING.value, container_id, job.image_ref, endpoint, ctx.settings.docker_host),
            started,
        )

    return body


def _stop_body(ctx: JobContext, job: StopJob) -> Body:
    """Stop and remove the game's engine, or replay: nothing runs under its name and it is stopped or unknown."""

    def body(marks: _Marks, docker: DockerRetry) -> _Outcome:
        record = marks.record
        container = docker(lambda: ctx.engines.find(container_name(job.game_id)))
        if is_stop_replay(record, container):
            return _Outcome(JobResult.replay(job.game_id))
        if record is not None and record.status != RecordStatus.STOPPED:
            marks.mark(RecordStatus.STOPPING)  # the destroy that follows is not a loss to report
        stopped_id = container.container_id if container is not None else ""
        if stopped_id:
            timeout = ctx.settings.stop_timeout_seconds
            docker(lambda: ctx.engines.stop_and_remove(stopped_id, timeout))
        if record is None:  # a container under the game's name without a record: removed, nothing to record
            return _Outcome(JobResult.success(job.game_id, stopped_id, ""))
        return _Outcome(
            JobResult.success(job.game_id, stopped_id or record.container_id, record.engine_endpoint),
            RecordView(RecordStatus.STOPPED.value, "", record.image_ref, record.engine_endpoint, record.docker_host),
        )

    return body


def _answer(ctx: JobContext, claim: Claim, body: Body) -> JobRun:
    """Run ``body`` under the claim and commit whatever it ended in (failures too), fenced by the claim.

    A value the database refuses (:class:`ValueRefused`: the job's own values,
    never the moment) would fail the job again on every try: it ends in an
    ``invalid_request`` result outside the game's sequence instead of in none.
    """
    job = claim.job
    started_ms = _ms(ctx)
    marks = _Marks(ctx, claim)
    docker = DockerRetry(ctx, game_id=job.game_id, job_id=job.job_id)
    try:
        outcome = body(marks, docker)
    except JobFailed as exc:
        outcome = _Outcome(JobResult.failure(job.game_id, exc.code, exc.message))
    except BackendUnavailable as exc:
        if not isinstance(exc, DockerUnavailable):
            raise  # PostgreSQL or Redis: the claim expires and the job runs again
        outcome = _Outcome(_docker_unavailable(ctx, job.game_id, exc))
    except TransientError:  # ClaimLost included: the job runs again
        raise
    except Exception as exc:  # a bug must still end in a result, not a lost job
        log.exception("job_internal_error", job=job.kind.value, job_id=job.job_id, game_id=job.game_id)
        outcome = _Outcome(JobResult.failure(job.game_id, JobErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"))
    if outcome.result.outcome is JobOutcome.FAILURE and marks.marked:
        outcome = _Outcome(outcome.result, claim.record)  # put back the status the mark replaced
    record = claim.record
    finished = FinishedJob(
        job_id=job.job_id,
        kind=job.kind,
        result=outcome.result,
        started_at_ms=started_ms,
        finished_at_ms=_ms(ctx),
        source_entry_id=job.source_entry_id,
        image_ref=job.image_ref or (record.image_ref if record else ""),
        reason=job.reason,
        record=outcome.record,
        health_event=outcome.health_event,
        order=job.order,
    )
    try:
        committed = ctx.queue.finish(claim, finished)
    except ValueRefused as exc:
        log.warning(
            "job_refused_by_database", job=job.kind.value, job_id=job.job_id, game_id=job.game_id, error=str(exc)
        )
        if marks.marked:
            ctx.queue.put_back(claim)  # nothing of the job is committed: its mark must not stay
        ctx.queue.drop(claim)
        message = f"refused by the database: SQLSTATE {exc.sqlstate}"
        return _invalid_outside_game(
            ctx, job.kind, job.game_id, message, job_id=job.job_id, source_entry_id=job.source_entry_id
        )
    if committed is None:
        raise ClaimLost(job.job_id)
    return _published(ctx, committed, finished, docker.attempts)


class NotAnswered(TransientError):
    """A job called in-process was queued but not answered in time (its game is busy or waits)."""


def run_job_now(ctx: JobContext, job: QueuedJob, *, wait_seconds: float | None = None) -> JobRun:
    """Queue ``job``, take the game's turn here, and return its answer (a shell call, a test)."""
    done = queue_job(ctx, job)
    return done if done is not None else answer_in_turn(ctx, job, wait_seconds=wait_seconds)


def queue_job(ctx: JobContext, job: QueuedJob) -> JobRun | None:
    """Queue ``job``; its earlier answer instead when it was answered before (a retried call)."""
    done = ctx.queue.finished_result(job.job_id)
    if done is not None:
        return _already_done(job.job_id, job.game_id, done)
    ctx.queue.enqueue([job])
    return None


def answer_in_turn(ctx: JobContext, job: QueuedJob, *, wait_seconds: float | None = None) -> JobRun:
    """Take the game's turn here for a queued ``job`` and return its answer.

    When another worker holds the game, the job is answered in its turn there;
    this waits for that answer up to ``wait_seconds`` (default: the claim bound).
    """
    report = drain_game(ctx, job.game_id)
    for run in report.runs:
        if run.job_id == job.job_id:
            return run
    return wait_for_answer(ctx, job, report, wait_seconds=ctx.claim_seconds if wait_seconds is None else wait_seconds)


def wait_for_answer(ctx: JobContext, job: QueuedJob, report: DrainReport, *, wait_seconds: float) -> JobRun:
    """The answer of a queued job another worker runs; :class:`NotAnswered` after ``wait_seconds``."""
    deadline = ctx.clock() + wait_seconds
    delay = 0.05
    while True:
        done = ctx.queue.finished_result(job.job_id)
        if done is not None:
            return JobRun(job.job_id, done)
        if ctx.clock() >= deadline:
            raise NotAnswered(
                f"job {job.job_id} of game {job.game_id} is queued, not answered within {wait_seconds:g} s "
                f"(the game is {report.state}: {report.detail}); its result will appear on runtime:job_results",
            )
        ctx.sleep(delay)
        delay = min(delay * 2, 1.0)


def run_start_job(ctx: JobContext, job: StartJob, *, job_id: str, source_entry_id: str | None = None) -> JobRun:
    """Start the game's engine (queued in the game's order, run here when it is its turn)."""
    key = _key_of(ctx, source_entry_id)
    queued = QueuedJob(
        job_id, job.game_id, JobKind.START, key, image_ref=job.image_ref, source_entry_id=source_entry_id
    )
    return run_job_now(ctx, queued)


def run_stop_job(ctx: JobContext, job: StopJob, *, job_id: str, source_entry_id: str | None = None) -> JobRun:
    """Stop and remove the game's engine (queued in the game's order, run here when it is its turn)."""
    key = _key_of(ctx, source_entry_id)
    queued = QueuedJob(job_id, job.game_id, JobKind.STOP, key, reason=job.reason, source_entry_id=source_entry_id)
    return run_job_now(ctx, queued)


def _key_of(ctx: JobContext, source_entry_id: str | None) -> StreamId:
    return ctx.streams.now_key() if source_entry_id is None else StreamId.parse(source_entry_id)


def needs_its_turn(ctx: JobContext, job: QueuedJob) -> bool:
    """Whether ``job`` waits in its game's queue; a malformed job of a game without history does not: it is
    answered at once by :func:`answer_outside_game` (SPEC §3: it leaves no per-game state)."""
    return job.invalid is None or ctx.queue.has_game(job.game_id)


def answer_outside_game(ctx: JobContext, job: QueuedJob) -> JobRun:
    """One ``invalid_request`` result and one log row, appended once by job id outside every game's sequence."""
    assert job.invalid is not None
    return _invalid_outside_game(
        ctx, job.kind, job.game_id, job.invalid, job_id=job.job_id, source_entry_id=job.source_entry_id
    )


def answer_job(ctx: JobContext, job: QueuedJob) -> JobRun:
    """Queue ``job`` and answer it here (malformed jobs of unknown games at once): shell calls and tests."""
    return run_job_now(ctx, job) if needs_its_turn(ctx, job) else answer_outside_game(ctx, job)


def _invalid_outside_game(
    ctx: JobContext, kind: JobKind, game_id: str, message: str, *, job_id: str, source_entry_id: str | None
) -> JobRun:
    now = _ms(ctx)
    result = JobResult.failure(game_id, JobErrorCode.INVALID_REQUEST, message)
    finished = FinishedJob(job_id, kind, result, now, now, source_entry_id)
    try:
        stored, logged = ctx.queue.log_outside_game(finished)
    except ValueRefused:  # the values of the job itself (its game id): the result is all that can go out
        stored, logged = result, False
    appended = ctx.results_outbox.append_once(f"job:{job_id}", stored.to_fields())
    if not logged and not appended:
        return _already_done(job_id, game_id, stored)
    metrics.JOBS_FINISHED.labels(kind.value, stored.outcome.value, stored.error_code or "").inc()
    log.info(
        "job_finished",
        job=kind.value,
        job_id=job_id,
        game_id=game_id,
        stream_entry_id=source_entry_id,
        outcome=stored.outcome.value,
        error_code=stored.error_code,
        error_message=stored.error_message,
        outside_game=True,
    )
    return JobRun(job_id, stored)


def _spec(settings: EngineSettings, job: StartJob, endpoint: str) -> EngineSpec:
    return EngineSpec(
        name=container_name(job.game_id),
        game_id=job.game_id,
        image_ref=job.image_ref,
        engine_endpoint=endpoint,
        network=settings.network,
        memory_limit=settings.memory_limit,
        nano_cpus=int(settings.cpus * 1_000_000_000),
        restart_policy=settings.restart_policy,
        pull_missing_image=settings.pull_missing_image,
        docker_host=settings.docker_host,
        isolation=settings.isolation,
    )


def _docker_unavailable(ctx: JobContext, game_id: str, exc: BackendUnavailable) -> JobResult:
    return JobResult.failure(
        game_id,
        JobErrorCode.DOCKER_UNAVAILABLE,
        f"the Docker Engine did not answer for {ctx.docker_retry_seconds:g} s (GALAXY_DOCKER_RETRY_SECONDS): "
        f"{exc.detail}",
    )


def _already_done(job_id: str, game_id: str, result: JobResult) -> JobRun:
    log.info("job_already_done", job_id=job_id, game_id=game_id, outcome=result.outcome.value)
    return JobRun(job_id, result, already_done=True)


def _published(ctx: JobContext, committed: CommittedJob, finished: FinishedJob, docker_retries: int) -> JobRun:
    after_commit(ctx.results_outbox, [committed.result_entry])
    if committed.health_entry is not None:
        assert finished.health_event is not None  # an entry is committed only for an event
        announce_committed(ctx.health_outbox, finished.health_event, committed.health_entry)
    result = finished.result
    duration_ms = finished.finished_at_ms - finished.started_at_ms
    metrics.JOBS_FINISHED.labels(finished.kind.value, result.outcome.value, result.error_code or "").inc()
    metrics.JOB_DURATION.labels(finished.kind.value).observe(duration_ms / 1000)
    log.info(
        "job_finished",
        job=finished.kind.value,
        job_id=finished.job_id,
        game_id=result.game_id,
        stream_entry_id=finished.source_entry_id,
        outcome=result.outcome.value,
        error_code=result.error_code,
        error_message=result.error_message,
        container_id=result.container_id,
        duration_ms=duration_ms,
        docker_retries=docker_retries,
    )
    return JobRun(finished.job_id, result)


def _ms(ctx: JobContext) -> int:
    return int(ctx.clock() * 1000)
