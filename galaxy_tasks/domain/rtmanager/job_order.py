"""The per-game order of start/stop jobs (SPEC §5 "RTM: start/stop jobs").

The jobs of one game take effect as if both job streams were merged by entry
id and applied one at a time.  Every job handed on gets an *order key*: its
stream entry id (both job streams take ids from one Redis clock), or for a
job called from a Python shell the Redis time of the call.  Per game, jobs
wait in a queue and are taken lowest key first; a job whose key is below
the newest key already applied came too late (a late redelivery, a repair, a
replay) and is answered ``superseded`` without being acted on.

Pure: the queued job, how an entry becomes one, and the decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from galaxy_tasks.domain.rtmanager.jobs import (
    InvalidJob,
    JobErrorCode,
    JobKind,
    JobResult,
    StartJob,
    StopJob,
    decode_start_job,
    decode_stop_job,
)
from galaxy_tasks.domain.stream_ids import StreamId


class JobOrder(NamedTuple):
    """Where a job stands in its game's order: its key, then its job id (two streams can give one id, and
    two shell calls one millisecond: the job id breaks the tie, so ``runtime:start_jobs:…`` goes first)."""

    key: StreamId
    job_id: str


NO_ORDER = JobOrder(StreamId(0, 0), "")
"""The applied order of a game no job was applied to yet."""


@dataclass(frozen=True)
class QueuedJob:
    """A job handed on and not answered yet, as it waits in its game's queue."""

    job_id: str
    game_id: str
    kind: JobKind
    key: StreamId
    image_ref: str = ""
    reason: str = ""
    invalid: str | None = None
    """Why the job breaks the contract (it is answered ``invalid_request`` in its turn); ``None``: valid."""
    source_entry_id: str | None = None

    @property
    def order(self) -> JobOrder:
        return JobOrder(self.key, self.job_id)

    def as_job(self) -> StartJob | StopJob:
        if self.kind is JobKind.START:
            return StartJob(self.game_id, self.image_ref)
        return StopJob(self.game_id, self.reason)


def queued_from_fields(
    kind: JobKind,
    fields: Mapping[str, str],
    *,
    job_id: str,
    key: StreamId,
    source_entry_id: str | None,
    known: Callable[[str], bool],
) -> QueuedJob:
    """A job entry (or a shell call's arguments) as a queued job; :class:`InvalidJob` when it names no game.

    A job that names its game but breaks the contract is queued all the same,
    carrying the reason: its ``invalid_request`` answer takes its turn.
    """
    try:
        job = decode_start_job(fields, known=known) if kind is JobKind.START else decode_stop_job(fields, known=known)
    except InvalidJob as exc:
        if not exc.game_id:
            raise
        return QueuedJob(job_id, exc.game_id, kind, key, invalid=exc.message, source_entry_id=source_entry_id)
    if isinstance(job, StartJob):
        return QueuedJob(job_id, job.game_id, kind, key, image_ref=job.image_ref, source_entry_id=source_entry_id)
    return QueuedJob(job_id, job.game_id, kind, key, reason=job.reason, source_entry_id=source_entry_id)


def is_superseded(job: QueuedJob, applied: JobOrder) -> bool:
    """A job after it in its game's order was applied already: this one is never acted on."""
    return job.order < applied


def superseded_result(job: QueuedJob, applied: JobOrder) -> JobResult:
    return JobResult.failure(
        job.game_id,
        JobErrorCode.SUPERSEDED,
        f"{job.kind.value} job {job.job_id} (order {job.key}) came after the game's later job {applied.job_id} "
        f"(order {applied.key}) was applied: not acted on",
    )


def older_than(job: QueuedJob, entries: list[JobOrder]) -> list[JobOrder]:
    """Of the game's job entries at or before the job's key, those before it in the game's order."""
    return sorted(entry for entry in entries if entry < job.order)


def stream_job_id(stream: str, entry_id: str) -> str:
    """The job id of a job stream entry (unique in ``operation_log``): ``runtime:start_jobs:<entry id>``."""
    return f"{stream}:{entry_id}"
