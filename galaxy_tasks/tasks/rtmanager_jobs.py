"""Runtime Manager start/stop jobs: shell-callable tasks, per-entry tasks of the job streams, their bridges.

``rtmanager.start_game(game_id, image_ref)`` and ``rtmanager.stop_game(game_id,
reason=None)`` are what an operator calls from a Python shell; they return the
job result as a dict.  The Lobby's jobs arrive on ``runtime:start_jobs`` and
``runtime:stop_jobs``; a bridge per stream hands each entry to
``rtmanager.start_job_entry`` / ``rtmanager.stop_job_entry``.  Both paths run
the same service function; a job is identified by its stream entry (or its
task id), so a redelivery changes and publishes nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from celery import Task

from galaxy_tasks import metrics
from galaxy_tasks.adapters.postgres.rtm_records import PostgresPlacement
from galaxy_tasks.bootstrap import resources
from galaxy_tasks.celery_app import app
from galaxy_tasks.domain.rtmanager.jobs import (
    START_JOB_FIELDS,
    STOP_JOB_FIELDS,
    InvalidJob,
    JobKind,
    StartJob,
    WrongDockerHost,
    decode_start_job,
    decode_stop_job,
    place,
)
from galaxy_tasks.logs import get_logger
from galaxy_tasks.long_running import (
    START_JOBS_BRIDGE_KEYS,
    START_JOBS_STREAM,
    STOP_JOBS_BRIDGE_KEYS,
    STOP_JOBS_STREAM,
)
from galaxy_tasks.queues import Queue, on_docker_host
from galaxy_tasks.service.bridge import StreamBridge
from galaxy_tasks.service.jobs import JOB_RESULT_OUTBOX_LABEL, record_invalid_job, run_start_job, run_stop_job
from galaxy_tasks.task_names import TaskName
from galaxy_tasks.tasks._base import galaxy_task, relay_outbox
from galaxy_tasks.tasks._long_running import LONG_RUNNING_OPTIONS, build_stream_bridge, stop_condition

log = get_logger(__name__)

JOB_OPTIONS: dict[str, Any] = {"acks_late": True, "time_limit": None, "soft_time_limit": None}
"""A job holds its game across Docker calls (an image pull included): no time limit until the jobs
have their own bound; a job redelivered while it runs waits for its game, then finds itself done."""


@galaxy_task(TaskName.RTM_START_GAME, **JOB_OPTIONS)
def start_game(self: Task, game_id: str, image_ref: str) -> dict[str, Any]:
    """Start ``game_id``'s engine container from ``image_ref``; the job result (SPEC §3) as a dict.

    Idempotent by game: if its live container already runs, ``success`` with
    ``error_code=replay_no_op`` and that container.
    """
    fields = {"game_id": game_id, "image_ref": image_ref}
    return _run_job(JobKind.START, fields, job_id=_task_job_id(self), source_entry_id=None, stream="")


@galaxy_task(TaskName.RTM_STOP_GAME, **JOB_OPTIONS)
def stop_game(self: Task, game_id: str, reason: str | None = None) -> dict[str, Any]:
    """Stop and remove ``game_id``'s engine container; the job result as a dict.

    Idempotent by game: a stopped or unknown game is ``success`` with
    ``error_code=replay_no_op`` and an empty container id.
    """
    fields = {"game_id": game_id, "reason": reason or ""}
    return _run_job(JobKind.STOP, fields, job_id=_task_job_id(self), source_entry_id=None, stream="")


@galaxy_task(TaskName.RTM_START_JOB_ENTRY, **JOB_OPTIONS)
def start_job_entry(
    self: Task, entry_id: str, fields: dict[str, str], prev_entry_id: str | None = None
) -> dict[str, Any]:
    """Run one ``runtime:start_jobs`` entry (handed on by its bridge)."""
    job_id = f"{START_JOBS_STREAM}:{entry_id}"
    return _run_job(JobKind.START, fields, job_id=job_id, source_entry_id=entry_id, stream=START_JOBS_STREAM)


@galaxy_task(TaskName.RTM_STOP_JOB_ENTRY, **JOB_OPTIONS)
def stop_job_entry(
    self: Task, entry_id: str, fields: dict[str, str], prev_entry_id: str | None = None
) -> dict[str, Any]:
    """Run one ``runtime:stop_jobs`` entry (handed on by its bridge)."""
    job_id = f"{STOP_JOBS_STREAM}:{entry_id}"
    return _run_job(JobKind.STOP, fields, job_id=job_id, source_entry_id=entry_id, stream=STOP_JOBS_STREAM)


@galaxy_task(TaskName.RTM_RELAY_JOB_RESULTS, acks_late=True)
def relay_job_results(self: Task) -> dict[str, Any]:
    """Append committed job results still in the outbox to ``runtime:job_results`` (idempotent)."""
    return relay_outbox(resources().job_results_outbox, JOB_RESULT_OUTBOX_LABEL)


@galaxy_task(TaskName.RTM_START_JOBS_BRIDGE, **LONG_RUNNING_OPTIONS)
def start_jobs_bridge(self: Task, max_seconds: float | None = None) -> dict[str, Any]:
    """Hand ``runtime:start_jobs`` entries on to ``rtmanager.start_job_entry`` (long-running, leased)."""
    return build_job_bridge(START_JOBS_STREAM).run(stop_condition(max_seconds)).as_dict()


@galaxy_task(TaskName.RTM_STOP_JOBS_BRIDGE, **LONG_RUNNING_OPTIONS)
def stop_jobs_bridge(self: Task, max_seconds: float | None = None) -> dict[str, Any]:
    """Hand ``runtime:stop_jobs`` entries on to ``rtmanager.stop_job_entry`` (long-running, leased)."""
    return build_job_bridge(STOP_JOBS_STREAM).run(stop_condition(max_seconds)).as_dict()


def build_job_bridge(stream: str) -> StreamBridge:
    """Jobs are not ordered per game by the bridge (each job holds its game instead): no partitions."""
    start = stream == START_JOBS_STREAM
    return build_stream_bridge(
        stream=stream,
        keys=START_JOBS_BRIDGE_KEYS if start else STOP_JOBS_BRIDGE_KEYS,
        partition_of=lambda fields: None,
        entry_task=TaskName.RTM_START_JOB_ENTRY if start else TaskName.RTM_STOP_JOB_ENTRY,
        known_fields=START_JOB_FIELDS if start else STOP_JOB_FIELDS,
    )


def _task_job_id(task: Task) -> str:
    """A shell call is identified by its task id (kept across retries); a direct call gets a fresh one."""
    return f"task:{task.request.id or uuid.uuid4()}"


def _run_job(
    kind: JobKind,
    fields: Mapping[str, str],
    *,
    job_id: str,
    source_entry_id: str | None,
    stream: str,
    placed: bool = False,
) -> dict[str, Any]:
    """Decode, then run here — or, with several Docker hosts, on the worker of the game's host."""
    try:
        known = resources().job_context.store.has_game
        job = decode_start_job(fields, known=known) if kind is JobKind.START else decode_stop_job(fields, known=known)
    except InvalidJob as exc:
        return _invalid(exc, kind, job_id=job_id, source_entry_id=source_entry_id, stream=stream)
    res = resources()
    hosts = res.settings.docker_host_names()
    here = res.settings.docker_host_name
    if hosts and not placed:
        placement = PostgresPlacement(res.engine)
        host = place(placement.host_of(job.game_id), placement.running_by_host(), hosts)
        if host != here:
            return _forward(kind, fields, host, job_id=job_id, source_entry_id=source_entry_id)
    try:
        if isinstance(job, StartJob):
            run = run_start_job(res.job_context, job, job_id=job_id, source_entry_id=source_entry_id)
        else:
            run = run_stop_job(res.job_context, job, job_id=job_id, source_entry_id=source_entry_id)
    except WrongDockerHost as exc:  # placed while the game moved: its host's worker does it
        return _forward(kind, fields, exc.host, job_id=job_id, source_entry_id=source_entry_id)
    return run.as_dict()


def _forward(
    kind: JobKind, fields: Mapping[str, str], host: str, *, job_id: str, source_entry_id: str | None
) -> dict[str, Any]:
    """Hand the job to its Docker host's queue; the result appears on runtime:job_results (no waiting here)."""
    queue = on_docker_host(Queue.RTM_JOBS, host)
    app.send_task(
        TaskName.RTM_RUN_JOB_ON_HOST.value,
        kwargs={"kind": kind.value, "fields": dict(fields), "job_id": job_id, "source_entry_id": source_entry_id},
        queue=queue,
    )
    log.info("job_forwarded", job=kind.value, job_id=job_id, game_id=fields.get("game_id"), docker_host=host)
    return {"job_id": job_id, "forwarded_to": host, "queue": queue}


@galaxy_task(TaskName.RTM_RUN_JOB_ON_HOST, **JOB_OPTIONS)
def run_job_on_host(
    self: Task, kind: str, fields: dict[str, str], job_id: str, source_entry_id: str | None = None
) -> dict[str, Any]:
    """Run a placed start/stop job on this Docker host's worker (queue ``rtmanager.jobs.<host>``)."""
    return _run_job(JobKind(kind), fields, job_id=job_id, source_entry_id=source_entry_id, stream="", placed=True)


def _invalid(
    exc: InvalidJob, kind: JobKind, *, job_id: str, source_entry_id: str | None, stream: str
) -> dict[str, Any]:
    if not exc.game_id:
        metrics.JOB_ENTRIES_SKIPPED.labels(stream or "task").inc()
        log.warning(
            "job_entry_skipped", job=kind.value, stream=stream, stream_entry_id=source_entry_id, reason=exc.message
        )
        return {"job_id": job_id, "skipped": True, "reason": exc.message}
    ctx = resources().job_context
    run = record_invalid_job(ctx, kind, exc.game_id, exc.message, job_id=job_id, source_entry_id=source_entry_id)
    return run.as_dict()


__all__ = [
    "relay_job_results",
    "run_job_on_host",
    "start_game",
    "start_job_entry",
    "start_jobs_bridge",
    "stop_game",
    "stop_job_entry",
    "stop_jobs_bridge",
]
