"""The periodic Docker inspect of running games (seed ``003``), as a sweep and per-container tasks.

The sweep lists the managed containers once, prunes the baselines of games no
longer running, and names the containers the list cannot vouch for; each of
those gets its own inspect task (fanned out with ``expires``, so an outage
cannot pile them up).  A running record whose container is missing is left to
the reconciler, so ``container_disappeared`` has a single source.

An inspect is also one of the level-triggered looks of SPEC §5 "RTM:
convergence": a container it finds dead for good is reported through the same
``running → exited`` compare-and-swap as the listener's and the reconciler's
(never as ``inspect_unhealthy``), and for a game that is down it is half of
the evidence of recovery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from galaxy_tasks import metrics
from galaxy_tasks.domain.rtmanager.convergence import (
    RecoveryEvidence,
    death_event,
    is_dead_for_good,
    shows_healthy,
)
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.inspect import judge_inspect, needs_inspect
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.rtmanager import (
    ContainerRuntime,
    FollowUp,
    FollowUps,
    FollowUpTask,
    InspectBaselineStore,
    RunningRecords,
)
from galaxy_tasks.service.health_publisher import HealthPublisher

log = get_logger(__name__)


@dataclass
class SweepPlan:
    to_inspect: list[tuple[str, str, int]] = field(default_factory=list)
    """``(game_id, container_id, down_seq)`` of the containers that need a full inspect."""
    vouched: list[str] = field(default_factory=list)
    """Games the list alone showed unchanged and healthy."""
    missing: list[str] = field(default_factory=list)
    """Running games whose container is not listed: the reconciler's business."""
    pruned: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "to_inspect": [game for game, _, _ in self.to_inspect],
            "vouched": len(self.vouched),
            "missing": self.missing,
            "pruned_baselines": self.pruned,
        }


def plan_inspect_sweep(
    records: RunningRecords, runtime: ContainerRuntime, baselines: InspectBaselineStore, *, now_ms: int
) -> SweepPlan:
    running = records.running()
    known = baselines.all()
    games = {r.game_id for r in running}
    plan = SweepPlan(pruned=baselines.drop([g for g in known if g not in games]))
    if not running:
        return plan  # nothing to look at: not even a Docker call
    listed = runtime.list_managed()
    for record in running:
        row = listed.get(record.container_id) if record.container_id else None
        if row is None:
            plan.missing.append(record.game_id)
            log.debug("inspect_skipped_container_missing", game_id=record.game_id, container_id=record.container_id)
            continue
        if needs_inspect(
            container_id=row.container_id,
            state=row.state,
            status=row.status,
            baseline=known.get(record.game_id),
            now_ms=now_ms,
            down=record.down_seq > 0,
        ):
            plan.to_inspect.append((record.game_id, record.container_id, record.down_seq))
        else:
            plan.vouched.append(record.game_id)
    metrics.INSPECTIONS.labels("vouched").inc(len(plan.vouched))
    metrics.INSPECTIONS.labels("missing").inc(len(plan.missing))
    return plan


def run_inspect_sweep(
    records: RunningRecords,
    runtime: ContainerRuntime,
    baselines: InspectBaselineStore,
    follow_ups: FollowUps,
    *,
    now_ms: int,
    expires_seconds: float,
) -> SweepPlan:
    """List the managed containers once and ask for an inspect of each one the list cannot vouch for."""
    plan = plan_inspect_sweep(records, runtime, baselines, now_ms=now_ms)
    for game_id, container_id, down_seq in plan.to_inspect:
        follow_ups.send(
            FollowUp(FollowUpTask.INSPECT, (game_id, container_id), down_seq=down_seq, expires_seconds=expires_seconds)
        )
    return plan


def inspect_container(
    runtime: ContainerRuntime,
    baselines: InspectBaselineStore,
    publisher: HealthPublisher,
    *,
    records: RunningRecords,
    game_id: str,
    container_id: str,
    now_ms: int,
    down_seq: int = 0,
    success_threshold: int = 1,
) -> dict[str, object]:
    """Inspect one container: report a death for good, else judge it (seed ``003``), and feed a recovery.

    ``down_seq``: the game's down period when this inspect was asked for (0: not down).  A finding
    is published only while the container is still the current one of the game's running record
    (a start may have replaced it since the sweep): no other container speaks for the game.
    """
    observation = runtime.inspect(container_id)
    if observation is None:
        log.debug("inspect_skipped_container_missing", game_id=game_id, container_id=container_id)
        metrics.INSPECTIONS.labels("missing").inc()
        return {"game_id": game_id, "unhealthy": False, "skipped": "container missing"}
    if is_dead_for_good(observation):
        metrics.INSPECTIONS.labels("dead").inc()
        published = publisher.publish_death(death_event(game_id, observation, now_ms))
        if published is not None:
            metrics.RELIST_FINDINGS.labels("died", "inspect").inc()
        log.info("inspect_found_dead_container", game_id=game_id, container_id=container_id, reported=bool(published))
        return {"game_id": game_id, "unhealthy": True, "dead": True, "reported": published is not None}
    judgement = judge_inspect(
        observation, baselines.get(game_id), acked_restarts=baselines.acked_restarts(container_id)
    )
    baselines.put(game_id, judgement.baseline)
    metrics.INSPECTIONS.labels("unhealthy" if judgement.unhealthy else "healthy").inc()
    if judgement.publish and records.running_container(game_id) != container_id:
        log.info("inspect_finding_not_for_game", game_id=game_id, container_id=container_id)
        return {"game_id": game_id, "unhealthy": judgement.unhealthy, "skipped": "no longer the game's container"}
    if judgement.publish:
        publisher.publish(
            HealthEvent.inspect_unhealthy(
                game_id,
                container_id,
                now_ms,
                restart_count=observation.restart_count,
                state=observation.state,
                health=observation.health,
            )
        )
        log.info("inspect_unhealthy", game_id=game_id, container_id=container_id, reasons=list(judgement.reasons))
    recovered = None
    if down_seq and not judgement.publish:
        healthy = shows_healthy(observation) and not judgement.unhealthy

        def fold(evidence: RecoveryEvidence) -> RecoveryEvidence:
            return evidence.with_inspect(container_id, healthy=healthy)

        recovered = publisher.observe_recovery(
            game_id, down_seq, fold, success_threshold=success_threshold, now_ms=now_ms
        )
    return {
        "game_id": game_id,
        "unhealthy": judgement.unhealthy,
        "published": judgement.publish,
        "reasons": list(judgement.reasons),
        "recovered": recovered is not None,
    }
