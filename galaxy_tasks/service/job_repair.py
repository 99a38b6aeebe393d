"""The jobs' periodic pass: claims that outlived their job, and queued jobs nobody runs.

Events are hints, and so are messages: a job worker can be ``kill -9``'d in
the middle of a start, and the broker can lose a job's message.  Neither may
leave a game stuck, so this pass (beat, on each Docker host's queue: it asks
Docker) looks at two things every run:

* **Claims past the bound** (``GALAXY_JOB_CLAIM_SECONDS``): the job died or
  overran.  Docker's truth decides the record: a live container under the
  game's name makes the game ``running`` with that container (the start got
  that far, or the stop did not); otherwise a status the job's mark replaced is
  put back.  The claim is cleared with a new epoch, so the job, should it still
  be alive, commits nothing.  Its queue row stays, and its game's turn is
  taken again: the job is answered once (a start usually as a replay).
* **Queued jobs with no claim** for longer than ``GALAXY_JOB_REPAIR_AFTER_SECONDS``:
  their message was lost (or their game waits for an older job): the game's
  turn is handed on again.

Both count in ``galaxy_rtm_job_repairs_total{kind}`` and log with the game and job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from galaxy_tasks import metrics
from galaxy_tasks.domain.rtmanager.jobs import ContainerView, RecordStatus, RecordView, container_name, engine_endpoint
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.jobs import EngineContainers, JobQueue, StaleClaim

log = get_logger(__name__)

TRANSITIONAL = frozenset({RecordStatus.STARTING.value, RecordStatus.STOPPING.value})


@dataclass
class JobRepairReport:
    finished: list[str] = field(default_factory=list)
    """Games whose expired claim was settled as running (Docker runs their container)."""
    reverted: list[str] = field(default_factory=list)
    """Games whose expired claim was settled by putting back the status its mark replaced (or leaving it)."""
    redispatched: list[str] = field(default_factory=list)
    """Games whose queued jobs nobody ran: their turn was handed on again."""

    def as_dict(self) -> dict[str, object]:
        return {"finished": self.finished, "reverted": self.reverted, "redispatched": self.redispatched}


def repair_jobs(
    queue: JobQueue,
    engines: EngineContainers,
    send_turn: Callable[[str], None],
    *,
    claim_seconds: float,
    repair_after_seconds: float,
    endpoint_template: str,
    docker_host: str = "",
    limit: int = 100,
) -> JobRepairReport:
    """One pass: settle expired claims of this Docker host's games, then hand on the turns nobody took."""
    report = JobRepairReport()
    for stale in queue.stale_claims(bound_seconds=claim_seconds, limit=limit):
        if stale.record is not None and stale.record.docker_host not in ("", docker_host):
            continue  # that host's own pass asks its Docker
        container = engines.find(container_name(stale.game_id))
        endpoint = engine_endpoint(endpoint_template, stale.game_id)
        record, running = settled_record(stale, container, endpoint=endpoint, docker_host=docker_host)
        if not queue.clear_stale(stale, record):
            continue  # the claim moved on meanwhile
        (report.finished if running else report.reverted).append(stale.game_id)
        metrics.JOB_REPAIRS.labels("claim_finished" if running else "claim_reverted").inc()
        log.warning(
            "job_claim_expired",
            game_id=stale.game_id,
            job_id=stale.job_id,
            job=stale.kind.value,
            claimed_ms=stale.claimed_ms,
            settled_as=None if record is None else record.status,
            container_id=None if record is None else record.container_id,
        )
        send_turn(stale.game_id)
    settled = {*report.finished, *report.reverted}
    for game_id in queue.unclaimed_games(queued_before_seconds=repair_after_seconds, limit=limit):
        if game_id in settled:
            continue  # its turn was just sent
        report.redispatched.append(game_id)
        metrics.JOB_REPAIRS.labels("redispatched").inc()
        log.warning("job_turn_redispatched", game_id=game_id, hint="a queued job of the game had no worker")
        send_turn(game_id)
    return report


def settled_record(
    stale: StaleClaim, container: ContainerView | None, *, endpoint: str, docker_host: str
) -> tuple[RecordView | None, bool]:
    """What the record of an expired claim becomes, from Docker's truth; and whether that is ``running``.

    ``container`` is the one named after the game (``None``: there is none).
    ``None`` as the record: leave it as it is (the job made no mark to undo).
    """
    record = stale.record
    if container is not None and container.live:
        image_ref = container.image_ref or stale.image_ref or (record.image_ref if record else "")
        endpoint = record.engine_endpoint if record is not None and record.engine_endpoint else endpoint
        host = record.docker_host if record is not None and record.docker_host else docker_host
        return RecordView(RecordStatus.RUNNING.value, container.container_id, image_ref, endpoint, host), True
    if record is None or record.status not in TRANSITIONAL:
        return None, False
    previous = stale.prev_status if stale.prev_status not in (None, *TRANSITIONAL) else RecordStatus.STOPPED.value
    assert previous is not None
    return RecordView(
        previous, record.container_id, record.image_ref, record.engine_endpoint, record.docker_host
    ), False
