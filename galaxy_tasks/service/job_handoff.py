"""How a job stream's bridge hands its entries on: into the game's job queue first, then a turn per game.

The bridge calls this before it moves its stored offset, so every entry before
the offset is queued (or answered, or skipped): the order of jobs can then
tell "not handed on yet" (after the offset) from "waiting in the queue".  A
crash after queueing and before the offset is saved queues the same entries
again, which changes nothing (queued once per job id).

An entry that names no game is counted and skipped; a malformed entry of a
game without history is answered ``invalid_request`` on the spot, outside
every game's sequence (SPEC §3: it leaves no per-game state); every other job,
malformed ones of known games included, waits for its turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from galaxy_tasks import metrics
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.domain.rtmanager.job_order import QueuedJob, queued_from_fields, stream_job_id
from galaxy_tasks.domain.rtmanager.jobs import InvalidJob, JobKind
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.logs import get_logger
from galaxy_tasks.service.jobs import JobContext, answer_outside_game, needs_its_turn

log = get_logger(__name__)


def hand_on_jobs(
    ctx: JobContext,
    kind: JobKind,
    stream: str,
    handoffs: Sequence[Handoff],
    send_turn: Callable[[str], None],
) -> list[QueuedJob]:
    """Queue the entries' jobs, then give each game with a new job one turn (in stream order)."""
    queued: list[QueuedJob] = []
    for handoff in handoffs:
        job_id = stream_job_id(stream, handoff.entry_id)
        try:
            job = queued_from_fields(
                kind,
                handoff.fields,
                job_id=job_id,
                key=StreamId.parse(handoff.entry_id),
                source_entry_id=handoff.entry_id,
                known=ctx.queue.has_game,
            )
        except InvalidJob as exc:
            metrics.JOB_ENTRIES_SKIPPED.labels(stream).inc()
            log.warning(
                "job_entry_skipped", job=kind.value, stream=stream, stream_entry_id=handoff.entry_id, reason=exc.message
            )
            continue
        if not needs_its_turn(ctx, job):
            answer_outside_game(ctx, job)
            continue
        queued.append(job)
    ctx.queue.enqueue(queued)
    for game_id in dict.fromkeys(job.game_id for job in queued):
        send_turn(game_id)
    return queued


class JobQueueDispatcher:
    """The ``EntryDispatcher`` of a job stream's bridge: :func:`hand_on_jobs` for every batch it reads."""

    def __init__(self, ctx: JobContext, kind: JobKind, stream: str, send_turn: Callable[[str], None]) -> None:
        self._ctx = ctx
        self._kind = kind
        self._stream = stream
        self._send_turn = send_turn

    def send_each(self, handoffs: Sequence[Handoff]) -> None:
        hand_on_jobs(self._ctx, self._kind, self._stream, handoffs, self._send_turn)

    def send_chunks(self, chunks: Sequence[Sequence[Handoff]]) -> None:
        for chunk in chunks:
            self.send_each(chunk)

    def waiting(self) -> int:
        return 0  # the job bridges hand everything on at once: jobs wait in their games' queues
