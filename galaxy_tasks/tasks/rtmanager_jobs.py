"""Runtime Manager start/stop jobs: shell-callable tasks, the game's turn, the job streams' bridges, repair.

``rtmanager.start_game(game_id, image_ref)`` and ``rtmanager.stop_game(game_id,
reason=None)`` are what an operator calls from a Python shell; they return the
job result as a dict.  The Lobby's jobs arrive on ``runtime:start_jobs`` and
``runtime:stop_jobs``; a bridge per stream queues each entry's job in its
game's queue and sends ``rtmanager.run_game_jobs(game_id)``: the game's turn,
which runs its queued jobs one at a time in order (SPEC §5).  Shell calls join
the same queue.  ``rtmanager.repair_jobs`` (beat, per Docker host) settles
claims that outlived their job and hands on turns nobody took.  Each body is
one call into :class:`~galaxy_tasks.service.job_dispatch.JobDispatch`, which
also decides which Docker host's worker takes a game's turn.
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import Task

from galaxy_tasks.bootstrap import resources
from galaxy_tasks.contract import START_JOBS_STREAM, STOP_JOBS_STREAM
from galaxy_tasks.domain.rtmanager.jobs import JobKind
from galaxy_tasks.task_names import TaskName
from galaxy_tasks.tasks._base import LONG_RUNNING_OPTIONS, galaxy_task, stop_condition

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
    fields = {"game_id": game_id, "image_ref": image_ref}
    return resources().job_dispatch.call(JobKind.START, fields, job_id=_task_job_id(self)).as_dict()


@galaxy_task(TaskName.RTM_STOP_GAME, **JOB_OPTIONS)
def stop_game(self: Task, game_id: str, reason: str | None = None) -> dict[str, Any]:
    """Stop and remove ``game_id``'s engine container; the job result as a dict.

    ``reason``: one of ``orphan_cleanup``, ``cancelled``, ``finished``, ``admin_request``, ``timeout``.
    Idempotent by game: a stopped or unknown game is ``success`` with ``error_code=replay_no_op``.
    """
    fields = {"game_id": game_id, "reason": reason or ""}
    return resources().job_dispatch.call(JobKind.STOP, fields, job_id=_task_job_id(self)).as_dict()


@galaxy_task(TaskName.RTM_RUN_GAME_JOBS, **JOB_OPTIONS)
def run_game_jobs(self: Task, game_id: str) -> dict[str, Any]:
    """The game's turn: run its queued start/stop jobs one at a time, lowest order first."""
    return resources().job_dispatch.take_turn(game_id).as_dict()


@galaxy_task(TaskName.RTM_START_JOB_ENTRY, **JOB_OPTIONS)
def start_job_entry(
    self: Task, entry_id: str, fields: dict[str, str], prev_entry_id: str | None = None
) -> dict[str, Any]:
    """One ``runtime:start_jobs`` entry handed on as a message of its own (queued, then its game's turn)."""
    return resources().job_dispatch.entry(JobKind.START, START_JOBS_STREAM, entry_id, fields).as_dict()


@galaxy_task(TaskName.RTM_STOP_JOB_ENTRY, **JOB_OPTIONS)
def stop_job_entry(
    self: Task, entry_id: str, fields: dict[str, str], prev_entry_id: str | None = None
) -> dict[str, Any]:
    """One ``runtime:stop_jobs`` entry handed on as a message of its own (queued, then its game's turn)."""
    return resources().job_dispatch.entry(JobKind.STOP, STOP_JOBS_STREAM, entry_id, fields).as_dict()


@galaxy_task(TaskName.RTM_RUN_JOB_ON_HOST, **JOB_OPTIONS)
def run_job_on_host(
    self: Task, kind: str, fields: dict[str, str], job_id: str, source_entry_id: str | None = None
) -> dict[str, Any]:
    """A job placed on this Docker host's worker by an earlier version (it forwards turns now, not jobs):
    queued, then its game's turn."""
    dispatch, job_kind = resources().job_dispatch, JobKind(kind)
    if source_entry_id is None:
        return dispatch.call(job_kind, fields, job_id=job_id).as_dict()
    stream = START_JOBS_STREAM if job_kind is JobKind.START else STOP_JOBS_STREAM
    return dispatch.entry(job_kind, stream, source_entry_id, fields).as_dict()


@galaxy_task(TaskName.RTM_REPAIR_JOBS, acks_late=True)
def repair_jobs(self: Task) -> dict[str, Any]:
    """Settle claims that outlived their job (from Docker's truth) and hand on turns nobody took."""
    return resources().job_dispatch.repair().as_dict()


@galaxy_task(TaskName.RTM_RELAY_JOB_RESULTS, acks_late=True)
def relay_job_results(self: Task) -> dict[str, Any]:
    """Append committed job results still in the outbox to ``runtime:job_results`` (idempotent)."""
    res = resources()
    return {"appended": res.relay(res.job_results_outbox)}


@galaxy_task(TaskName.RTM_START_JOBS_BRIDGE, **LONG_RUNNING_OPTIONS)
def start_jobs_bridge(self: Task, max_seconds: float | None = None) -> dict[str, Any]:
    """Hand ``runtime:start_jobs`` entries on to their games' job queues (long-running, leased)."""
    return resources().rtmanager.job_bridge(START_JOBS_STREAM).run(stop_condition(max_seconds)).as_dict()


@galaxy_task(TaskName.RTM_STOP_JOBS_BRIDGE, **LONG_RUNNING_OPTIONS)
def stop_jobs_bridge(self: Task, max_seconds: float | None = None) -> dict[str, Any]:
    """Hand ``runtime:stop_jobs`` entries on to their games' job queues (long-running, leased)."""
    return resources().rtmanager.job_bridge(STOP_JOBS_STREAM).run(stop_condition(max_seconds)).as_dict()


def _task_job_id(task: Task) -> str:
    """A shell call is identified by its task id (kept across retries); a direct call gets a fresh one."""
    return f"task:{task.request.id or uuid.uuid4()}"


__all__ = [
    "relay_job_results",
    "repair_jobs",
    "run_game_jobs",
    "run_job_on_host",
    "start_game",
    "start_job_entry",
    "start_jobs_bridge",
    "stop_game",
    "stop_job_entry",
    "stop_jobs_bridge",
]
