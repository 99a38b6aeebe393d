"""Job dispatch: which Docker host's worker runs a game's jobs, and getting its turn there.

A game's engine container lives on one Docker host, so its jobs run on that
host's worker (queue ``rtmanager.jobs[.<host>]``).  A game with a record runs
where the record says; a new game goes to the host running the fewest games
(:func:`~galaxy_tasks.domain.rtmanager.jobs.place`).  A job first reaches any
worker — a shell call, an entry handed on as a message of its own — and is
queued in its game's order there; that worker takes the game's turn when the
game is its host's, else forwards the turn and waits for the answer.  A turn
that finds the game moved meanwhile (its record names another host now) is
forwarded again.  With a single Docker host every turn is taken where it
lands.

This is the use case behind every job task: the task bodies in
``tasks/rtmanager_jobs.py`` are one call each into :class:`JobDispatch`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from galaxy_tasks import metrics
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.domain.rtmanager.job_order import QueuedJob, queued_from_fields, stream_job_id
from galaxy_tasks.domain.rtmanager.jobs import InvalidJob, JobKind, place
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.jobs import Forwarder, Placement
from galaxy_tasks.service.job_handoff import JobQueueDispatcher, hand_on_jobs
from galaxy_tasks.service.job_repair import JobRepairReport, repair_jobs
from galaxy_tasks.service.jobs import (
    DrainReport,
    JobContext,
    JobRun,
    answer_in_turn,
    answer_outside_game,
    drain_game,
    needs_its_turn,
    queue_job,
    wait_for_answer,
)

log = get_logger(__name__)


@dataclass(frozen=True)
class JobNotQueued:
    """A job that joined no game's queue: a shell call refused (no game id), or an entry skipped or answered
    at once (no game id, or malformed for a game without history)."""

    job_id: str
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"job_id": self.job_id, "skipped": True, "reason": self.reason}


@dataclass(frozen=True)
class JobDispatch:
    """Start/stop jobs from their arrival to their answer, on the right Docker host's worker."""

    ctx: JobContext
    placement: Placement
    forwarder: Forwarder
    hosts: Sequence[str]
    """``GALAXY_DOCKER_HOSTS`` (empty: one Docker host, every worker's)."""
    repair_after_seconds: float
    """``GALAXY_JOB_REPAIR_AFTER_SECONDS``: how long a queued job waits for a turn before the repair sends one."""

    @property
    def this_host(self) -> str:
        return self.ctx.settings.docker_host

    def host_for(self, game_id: str) -> str:
        """The Docker host whose worker runs the game's jobs."""
        if not self.hosts:
            return ""
        return place(self.placement.host_of(game_id), self.placement.running_by_host(), self.hosts)

    def send_turn(self, game_id: str, host: str | None = None) -> None:
        """Send the game's turn to its host's worker (``host``: already known, e.g. from the record)."""
        self.forwarder.send_turn(game_id, self.host_for(game_id) if host is None else host)

    def take_turn(self, game_id: str) -> DrainReport:
        """The game's turn: its queued jobs one at a time, lowest order first; forwarded if the game moved."""
        report = drain_game(self.ctx, game_id)
        if report.state == "moved":  # the game lives on another Docker host: its worker takes the turn
            self.send_turn(game_id, host=report.detail)
        return report

    def call(self, kind: JobKind, fields: Mapping[str, str], *, job_id: str) -> JobRun | JobNotQueued:
        """A job called from a Python shell: queued in its game's order (Redis time), answered in its turn."""
        ctx = self.ctx
        try:
            job = queued_from_fields(
                kind, fields, job_id=job_id, key=ctx.streams.now_key(), source_entry_id=None, known=ctx.queue.has_game
            )
        except InvalidJob as exc:
            metrics.JOB_ENTRIES_SKIPPED.labels("task").inc()
            log.warning("job_call_refused", job=kind.value, job_id=job_id, reason=exc.message)
            return JobNotQueued(job_id, exc.message)
        if not needs_its_turn(ctx, job):
            return answer_outside_game(ctx, job)
        done = queue_job(ctx, job)  # a retry of a call answered before gets that answer
        return done if done is not None else self._answer_here_or_there(job)

    def entry(self, kind: JobKind, stream: str, entry_id: str, fields: Mapping[str, str]) -> JobRun | JobNotQueued:
        """One job stream entry handed on as a message of its own: queued, then answered in its game's turn."""
        queued = hand_on_jobs(self.ctx, kind, stream, [Handoff(entry_id, dict(fields), None)], lambda game_id: None)
        if not queued:
            return JobNotQueued(stream_job_id(stream, entry_id), "skipped, or answered outside every game")
        return self._answer_here_or_there(queued[0])

    def bridge_dispatcher(self, kind: JobKind, stream: str) -> JobQueueDispatcher:
        """What a job stream's bridge hands its entries to: the games' queues, then a turn per game."""
        return JobQueueDispatcher(self.ctx, kind, stream, self.send_turn)

    def repair(self) -> JobRepairReport:
        """Settle claims that outlived their job (from Docker's truth) and send the turns nobody took."""
        ctx = self.ctx
        return repair_jobs(
            ctx.queue,
            ctx.engines,
            self.send_turn,
            claim_seconds=ctx.claim_seconds,
            repair_after_seconds=self.repair_after_seconds,
            endpoint_template=ctx.settings.endpoint_template,
            docker_host=self.this_host,
        )

    def _answer_here_or_there(self, job: QueuedJob) -> JobRun:
        """Take the game's turn here when the game is this host's; else send the turn to its host and wait."""
        host = self.host_for(job.game_id)
        if host != self.this_host:
            self.send_turn(job.game_id, host=host)
            report = DrainReport(job.game_id, [], state="moved", detail=host)
            return wait_for_answer(self.ctx, job, report, wait_seconds=self.ctx.claim_seconds)
        return answer_in_turn(self.ctx, job)
