"""Start and stop jobs of the Runtime Manager (SPEC §5 "RTM: start/stop jobs", seed ``002``).

A job holds its game (jobs of one game run one at a time, so two starts can
never make two containers), decides between a real start/stop and a replay
from the record and the container named ``galaxy-game-{game_id}``, talks to
Docker — retrying an unreachable daemon with backoff for a bounded time — and
commits the record, its one ``operation_log`` row and its one job result (a
start's ``container_started`` too) in one transaction; the result and the
event leave through outboxes, so neither is lost if the process dies or Redis
is down.  A redelivered job finds its ``operation_log`` row and does nothing
twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from galaxy_tasks import metrics
from galaxy_tasks.domain.errors import BackendUnavailable, TransientError, ValueRefused
from galaxy_tasks.domain.rtmanager.health import HealthEvent, validate_event
from galaxy_tasks.domain.rtmanager.jobs import (
    JobErrorCode,
    JobFailed,
    JobKind,
    JobOutcome,
    JobResult,
    RecordStatus,
    RecordView,
    StartJob,
    StopJob,
    check_docker_host,
    container_name,
    engine_endpoint,
    is_start_replay,
    is_stop_replay,
)
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports import (
    CommittedJob,
    EngineContainers,
    EngineSpec,
    FinishedJob,
    JobStore,
    JobTransaction,
    StreamOutbox,
)
from galaxy_tasks.service.health_publisher import announce_committed
from galaxy_tasks.service.outbox_relay import publish_entries_after_commit

log = get_logger(__name__)

T = TypeVar("T")

JOB_RESULT_OUTBOX_LABEL = "rtmanager.job_result_outbox"


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


@dataclass(frozen=True)
class JobContext:
    """Where a job came from and what it may use."""

    store: JobStore
    engines: EngineContainers
    results_outbox: StreamOutbox
    health_outbox: StreamOutbox
    settings: EngineSettings
    docker_retry_seconds: float
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
                if exc.backend != "docker":
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


@dataclass(frozen=True)
class _Outcome:
    result: JobResult
    record: RecordView | None = None
    """The record as the job leaves it; ``None``: untouched."""
    health_event: HealthEvent | None = None


class _Hold:
    """The job's transaction, remembering what a mark replaced so that a failure can put it back."""

    def __init__(self, tx: JobTransaction, record: RecordView | None) -> None:
        self.tx = tx
        self.record = record
        self.marked = False

    def mark(self, status: RecordStatus) -> None:
        if self.record is not None:
            self.tx.mark(status)
            self.marked = True


Body = Callable[[_Hold, DockerRetry], _Outcome]


def run_start_job(ctx: JobContext, job: StartJob, *, job_id: str, source_entry_id: str | None = None) -> JobRun:
    """Start the game's engine, or replay: its live container already runs."""

    def body(hold: _Hold, docker: DockerRetry) -> _Outcome:
        record = hold.record
        endpoint = engine_endpoint(ctx.settings.endpoint_template, job.game_id)
        container = docker(lambda: ctx.engines.find(container_name(job.game_id)))
        if record is not None and container is not None and is_start_replay(record, container):
            return _Outcome(JobResult.replay(job.game_id, container.container_id, record.engine_endpoint or endpoint))
        if record is not None and record.status == RecordStatus.RUNNING:
            hold.mark(RecordStatus.STARTING)  # its dead container goes on purpose: not a loss to report
        spec = _spec(ctx.settings, job, endpoint)
        container_id = docker(lambda: ctx.engines.replace(spec))
        started = HealthEvent.container_started(job.game_id, container_id, _ms(ctx), image_ref=job.image_ref)
        validate_event(started)
        return _Outcome(
            JobResult.success(job.game_id, container_id, endpoint),
            RecordView(RecordStatus.RUNNING.value, container_id, job.image_ref, endpoint, ctx.settings.docker_host),
            started,
        )

    return _run(
        ctx, JobKind.START, job.game_id, body, job_id=job_id, source_entry_id=source_entry_id, image_ref=job.image_ref
    )


def run_stop_job(ctx: JobContext, job: StopJob, *, job_id: str, source_entry_id: str | None = None) -> JobRun:
    """Stop and remove the game's engine, or replay: nothing runs under its name and it is stopped or unknown."""

    def body(hold: _Hold, docker: DockerRetry) -> _Outcome:
        record = hold.record
        container = docker(lambda: ctx.engines.find(container_name(job.game_id)))
        if is_stop_replay(record, container):
            return _Outcome(JobResult.replay(job.game_id))
        if record is not None and record.status != RecordStatus.STOPPED:
            hold.mark(RecordStatus.STOPPING)  # the destroy that follows is not a loss to report
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

    return _run(ctx, JobKind.STOP, job.game_id, body, job_id=job_id, source_entry_id=source_entry_id, reason=job.reason)


def _run(
    ctx: JobContext,
    kind: JobKind,
    game_id: str,
    body: Body,
    *,
    job_id: str,
    source_entry_id: str | None,
    image_ref: str = "",
    reason: str = "",
) -> JobRun:
    """Hold the game, skip a job done before, run ``body``, commit whatever it ended in (failures too).

    A value the database refuses (:class:`ValueRefused`: the job's own values,
    never the moment) would fail the job again on every try: it ends in an
    ``invalid_request`` result outside the game's hold instead of in no result.
    """
    done = ctx.store.finished_result(job_id)
    if done is not None:  # a redelivery: answered before (held or not), and it holds nothing now
        return _already_done(job_id, game_id, done)
    try:
        started_ms = _ms(ctx)
        with ctx.store.hold(game_id) as tx:
            done = tx.finished_result(job_id)
            if done is not None:
                return _already_done(job_id, game_id, done)
            hold = _Hold(tx, tx.record())
            check_docker_host(hold.record, ctx.settings.docker_host)  # before anything is done or written
            docker = DockerRetry(ctx, game_id=game_id, job_id=job_id)
            try:
                outcome = body(hold, docker)
            except JobFailed as exc:
                outcome = _Outcome(JobResult.failure(game_id, exc.code, exc.message))
            except BackendUnavailable as exc:
                if exc.backend != "docker":
                    raise  # PostgreSQL or Redis: the task retries the whole job
                outcome = _Outcome(_docker_unavailable(ctx, game_id, exc))
            except TransientError:
                raise
            except Exception as exc:  # a bug must still end in a result, not a lost job
                log.exception("job_internal_error", job=kind.value, job_id=job_id, game_id=game_id)
                outcome = _Outcome(
                    JobResult.failure(game_id, JobErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
                )
            if outcome.result.outcome is JobOutcome.FAILURE and hold.marked:
                outcome = _Outcome(outcome.result, hold.record)  # put back the status the mark replaced
            record = hold.record
            finished = FinishedJob(
                job_id=job_id,
                kind=kind,
                result=outcome.result,
                started_at_ms=started_ms,
                finished_at_ms=_ms(ctx),
                source_entry_id=source_entry_id,
                image_ref=image_ref or (record.image_ref if record else ""),
                reason=reason,
                record=outcome.record,
                health_event=outcome.health_event,
            )
            committed = tx.finish(finished)
    except ValueRefused as exc:
        log.warning("job_refused_by_database", job=kind.value, job_id=job_id, game_id=game_id, error=str(exc))
        message = f"refused by the database: SQLSTATE {exc.sqlstate}"
        return _invalid_outside_game(ctx, kind, game_id, message, job_id=job_id, source_entry_id=source_entry_id)
    return _published(ctx, committed, finished, docker.attempts)


def record_invalid_job(
    ctx: JobContext, kind: JobKind, game_id: str, message: str, *, job_id: str, source_entry_id: str | None
) -> JobRun:
    """A malformed job that names its game: one ``invalid_request`` result and one log row, nothing else.

    A game with history gets it in its own sequence of results, under its
    hold.  A game without any (a new id, junk included) gets no per-game
    state for it (SPEC §3): the log row, and the result appended once by job
    id outside every game's sequence.
    """
    if not ctx.store.has_game(game_id):
        return _invalid_outside_game(ctx, kind, game_id, message, job_id=job_id, source_entry_id=source_entry_id)

    def body(hold: _Hold, docker: DockerRetry) -> _Outcome:
        return _Outcome(JobResult.failure(game_id, JobErrorCode.INVALID_REQUEST, message))

    return _run(ctx, kind, game_id, body, job_id=job_id, source_entry_id=source_entry_id)


def _invalid_outside_game(
    ctx: JobContext, kind: JobKind, game_id: str, message: str, *, job_id: str, source_entry_id: str | None
) -> JobRun:
    now = _ms(ctx)
    result = JobResult.failure(game_id, JobErrorCode.INVALID_REQUEST, message)
    finished = FinishedJob(job_id, kind, result, now, now, source_entry_id)
    try:
        stored, logged = ctx.store.log_outside_game(finished)
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
    publish_entries_after_commit(ctx.results_outbox, [committed.result_entry], label=JOB_RESULT_OUTBOX_LABEL)
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
