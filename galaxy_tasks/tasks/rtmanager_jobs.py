"""Runtime Manager start/stop jobs: shell-callable tasks, the game's turn, the job streams' bridges, repair.

``rtmanager.start_game(game_id, image_ref)`` and ``rtmanager.stop_game(game_id,
reason=None)`` are what an operator calls from a Python shell; they return the
job result as a dict.  The Lobby's jobs arrive on ``runtime:start_jobs`` and
``runtime:stop_jobs``; a bridge per stream queues each entry's job in its
game's queue and sends ``rtmanager.run_game_jobs(game_id)``: the game's turn,
which runs its queued jobs one at a time in order (SPEC §5).  Shell calls join
the same queue.  ``rtmanager.repair_jobs`` (beat, per Docker host) settles
claims that outlived their job and hands on turns nobody took.
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
from galaxy_tasks.domain.rtmanager.job_order import QueuedJob, queued_from_fields, stream_job_id
from galaxy_tasks.domain.rtmanager.jobs import START_JOB_FIELDS, STOP_JOB_FIELDS, InvalidJob, JobKind, place
from galaxy_tasks.logs import get_logger
from galaxy_tasks.long_running import (
    START_JOBS_BRIDGE_KEYS,
    START_JOBS_STREAM,
    STOP_JOBS_BRIDGE_KEYS,
    STOP_JOBS_STREAM,
)
from galaxy_tasks.ports import Handoff
from galaxy_tasks.queues import Queue, on_docker_host
from galaxy_tasks.service.bridge import StreamBridge
from galaxy_tasks.service.job_handoff import JobQueueDispatcher, hand_on_jobs
from galaxy_tasks.service.job_repair import repair_jobs as run_job_repair
from galaxy_tasks.service.jobs import (
    JOB_RESULT_OUTBOX_LABEL,
    DrainReport,
    JobContext,
    answer_in_turn,
    answer_outside_game,
    drain_game,
    needs_its_turn,
    queue_job,
    wait_for_answer,
)
from galaxy_tasks.task_names import TaskName
from galaxy_tasks.tasks._base import galaxy_task, relay_outbox
from galaxy_tasks.tasks._long_running import LONG_RUNNING_OPTIONS, build_stream_bridge, stop_condition

log = get_logger(__name__)

JOB_OPTIONS: dict[str, Any] = {"acks_late": True, "time_limit": None, "soft_time_limit": None}
"""A game's turn runs Docker calls (an image pull included) with no transaction open: no time limit; its
claim's bound (``GALAXY_JOB_CLAIM_SECONDS``) is what ends a job that died or hangs.  A turn redelivered
while the first still runs finds the game claimed and ends at once."""


@galaxy_task(TaskName.RTM_START_GAME, **JOB_OPTIONS)
def start_game(self: Task, game_id: str, image_ref: str) -> dict[str, Any]:
    """Start ``game_id``'s engine container from ``image_ref``; the job result (SPEC §3) as a dict.

    Idempotent by game: if its live container already runs this image, ``success`` with
    ``error_code=replay_no_op`` and that container; another image is a ``conflict``.
    """
    return _shell_job(JobKind.START, {"game_id": game_id, "image_ref": image_ref}, job_id=_task_job_id(self))


@galaxy_task(TaskName.RTM_STOP_GAME, **JOB_OPTIONS)
def stop_game(self: Task, game_id: str, reason: str | None = None) -> dict[str, Any]:
    """Stop and remove ``game_id``'s engine container; the job result as a dict.

    ``reason``: one of ``orphan_cleanup``, ``cancelled``, ``finished``, ``admin_request``, ``timeout``.
    Idempotent by game: a stopped or unknown game is ``success`` with ``error_code=replay_no_op``.
    """
    return _shell_job(JobKind.STOP, {"game_id": game_id, "reason": reason or ""}, job_id=_task_job_id(self))


@galaxy_task(TaskName.RTM_RUN_GAME_JOBS, **JOB_OPTIONS)
def run_game_jobs(self: Task, game_id: str) -> dict[str, Any]:
    """The game's turn: run its queued start/stop jobs one at a time, lowest order first."""
    report = drain_game(resources().job_context, game_id)
    if report.state == "moved":  # the game lives on another Docker host: its worker takes the turn
        send_turn(game_id, host=report.detail)
    return report.as_dict()


@galaxy_task(TaskName.RTM_START_JOB_ENTRY, **JOB_OPTIONS)
def start_job_entry(
    self: Task, entry_id: str, fields: dict[str, str], prev_entry_id: str | None = None
) -> dict[str, Any]:
    """One ``runtime:start_jobs`` entry handed on as a message of its own (queued, then its game's turn)."""
    return _entry(JobKind.START, START_JOBS_STREAM, entry_id, fields)


@galaxy_task(TaskName.RTM_STOP_JOB_ENTRY, **JOB_OPTIONS)
def stop_job_entry(
    self: Task, entry_id: str, fields: dict[str, str], prev_entry_id: str | None = None
) -> dict[str, Any]:
    """One ``runtime:stop_jobs`` entry handed on as a message of its own (queued, then its game's turn)."""
    return _entry(JobKind.STOP, STOP_JOBS_STREAM, entry_id, fields)


@galaxy_task(TaskName.RTM_RUN_JOB_ON_HOST, **JOB_OPTIONS)
def run_job_on_host(
    self: Task, kind: str, fields: dict[str, str], job_id: str, source_entry_id: str | None = None
) -> dict[str, Any]:
    """A job placed on this Docker host's worker (queue ``rtmanager.jobs.<host>``): queued, then its game's turn."""
    stream = START_JOBS_STREAM if JobKind(kind) is JobKind.START else STOP_JOBS_STREAM
    if source_entry_id is not None:
        return _entry(JobKind(kind), stream, source_entry_id, fields)
    return _shell_job(JobKind(kind), fields, job_id=job_id)


@galaxy_task(TaskName.RTM_REPAIR_JOBS, acks_late=True)
def repair_jobs(self: Task) -> dict[str, Any]:
    """Settle claims that outlived their job (from Docker's truth) and hand on turns nobody took."""
    res = resources()
    s = res.settings
    ctx = res.job_context
    return run_job_repair(
        ctx.queue,
        ctx.engines,
        send_turn,
        claim_seconds=s.job_claim_seconds,
        repair_after_seconds=s.job_repair_after_seconds,
        endpoint_template=s.engine_endpoint_template,
        docker_host=s.docker_host_name,
    ).as_dict()


@galaxy_task(TaskName.RTM_RELAY_JOB_RESULTS, acks_late=True)
def relay_job_results(self: Task) -> dict[str, Any]:
    """Append committed job results still in the outbox to ``runtime:job_results`` (idempotent)."""
    return relay_outbox(resources().job_results_outbox, JOB_RESULT_OUTBOX_LABEL)


@galaxy_task(TaskName.RTM_START_JOBS_BRIDGE, **LONG_RUNNING_OPTIONS)
def start_jobs_bridge(self: Task, max_seconds: float | None = None) -> dict[str, Any]:
    """Hand ``runtime:start_jobs`` entries on to their games' job queues (long-running, leased)."""
    return build_job_bridge(START_JOBS_STREAM).run(stop_condition(max_seconds)).as_dict()


@galaxy_task(TaskName.RTM_STOP_JOBS_BRIDGE, **LONG_RUNNING_OPTIONS)
def stop_jobs_bridge(self: Task, max_seconds: float | None = None) -> dict[str, Any]:
    """Hand ``runtime:stop_jobs`` entries on to their games' job queues (long-running, leased)."""
    return build_job_bridge(STOP_JOBS_STREAM).run(stop_condition(max_seconds)).as_dict()


def build_job_bridge(stream: str) -> StreamBridge:
    """Jobs are ordered by their games' queues, not by the bridge: no partitions, no chunks."""
    start = stream == START_JOBS_STREAM
    kind = JobKind.START if start else JobKind.STOP
    return build_stream_bridge(
        stream=stream,
        keys=START_JOBS_BRIDGE_KEYS if start else STOP_JOBS_BRIDGE_KEYS,
        partition_of=lambda fields: None,
        entry_task=TaskName.RTM_START_JOB_ENTRY if start else TaskName.RTM_STOP_JOB_ENTRY,
        known_fields=START_JOB_FIELDS if start else STOP_JOB_FIELDS,
        dispatcher=JobQueueDispatcher(lambda: resources().job_context, kind, stream, send_turn),
    )


def send_turn(game_id: str, host: str | None = None) -> None:
    """Send the game's turn to the worker of its Docker host (placed on the least busy host if new)."""
    if host is None:
        host = _host_for(game_id)
    queue = on_docker_host(Queue.RTM_JOBS, host)
    app.send_task(TaskName.RTM_RUN_GAME_JOBS.value, args=[game_id], queue=queue, ignore_result=True)


def _host_for(game_id: str) -> str:
    res = resources()
    hosts = res.settings.docker_host_names()
    if not hosts:
        return ""
    placement = PostgresPlacement(res.engine)
    return place(placement.host_of(game_id), placement.running_by_host(), hosts)


def _task_job_id(task: Task) -> str:
    """A shell call is identified by its task id (kept across retries); a direct call gets a fresh one."""
    return f"task:{task.request.id or uuid.uuid4()}"


def _entry(kind: JobKind, stream: str, entry_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    ctx = resources().job_context
    queued = hand_on_jobs(ctx, kind, stream, [Handoff(entry_id, dict(fields), None)], lambda game_id: None)
    if not queued:
        return {"job_id": stream_job_id(stream, entry_id), "skipped_or_answered": True}
    return _turn_here_or_there(ctx, queued[0])


def _shell_job(kind: JobKind, fields: Mapping[str, str], *, job_id: str) -> dict[str, Any]:
    """A job called from a Python shell: queued in its game's order (Redis time), answered in its turn."""
    ctx = resources().job_context
    try:
        job = queued_from_fields(
            kind, fields, job_id=job_id, key=ctx.streams.now_key(), source_entry_id=None, known=ctx.queue.has_game
        )
    except InvalidJob as exc:
        metrics.JOB_ENTRIES_SKIPPED.labels("task").inc()
        log.warning("job_call_refused", job=kind.value, job_id=job_id, reason=exc.message)
        return {"job_id": job_id, "skipped": True, "reason": exc.message}
    if not needs_its_turn(ctx, job):
        return answer_outside_game(ctx, job).as_dict()
    done = queue_job(ctx, job)  # a retry of a call answered before gets that answer
    return done.as_dict() if done is not None else _turn_here_or_there(ctx, job)


def _turn_here_or_there(ctx: JobContext, job: QueuedJob) -> dict[str, Any]:
    """For a queued job: take the game's turn here (this worker's Docker host) and answer; or send the turn
    to its host and wait."""
    host = _host_for(job.game_id)
    if host != resources().settings.docker_host_name:
        send_turn(job.game_id, host=host)
        report = DrainReport(job.game_id, [], state="moved", detail=host)
        return wait_for_answer(ctx, job, report, wait_seconds=ctx.claim_seconds).as_dict()
    return answer_in_turn(ctx, job).as_dict()


__all__ = [
    "relay_job_results",
    "repair_jobs",
    "run_game_jobs",
    "run_job_on_host",
    "send_turn",
    "start_game",
    "start_job_entry",
    "start_jobs_bridge",
    "stop_game",
    "stop_job_entry",
    "stop_jobs_bridge",
]
