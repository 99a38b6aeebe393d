"""The periodic Docker inspect of running games (seed ``003``), as a sweep and per-container tasks.

The sweep lists the managed containers once, prunes the baselines of games no
longer running, and names the containers the list cannot vouch for; each of
those gets its own inspect task (fanned out with ``expires``, so an outage
cannot pile them up).  A running record whose container is missing is left to
the reconciler, so ``container_disappeared`` has a single source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from galaxy_tasks import metrics
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.inspect import judge_inspect, needs_inspect
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports import ContainerRuntime, InspectBaselineStore, RunningRecords

log = get_logger(__name__)


@dataclass
class SweepPlan:
    to_inspect: list[tuple[str, str]] = field(default_factory=list)
    """``(game_id, container_id)`` pairs that need a full inspect."""
    vouched: list[str] = field(default_factory=list)
    """Games the list alone showed unchanged and healthy."""
    missing: list[str] = field(default_factory=list)
    """Running games whose container is not listed: the reconciler's business."""
    pruned: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "to_inspect": [game for game, _ in self.to_inspect],
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
        ):
            plan.to_inspect.append((record.game_id, record.container_id))
        else:
            plan.vouched.append(record.game_id)
    metrics.INSPECTIONS.labels("vouched").inc(len(plan.vouched))
    metrics.INSPECTIONS.labels("missing").inc(len(plan.missing))
    return plan


def inspect_container(
    runtime: ContainerRuntime,
    baselines: InspectBaselineStore,
    publish: Callable[[HealthEvent], object],
    *,
    game_id: str,
    container_id: str,
    now_ms: int,
) -> dict[str, object]:
    """Inspect one container, move the game's baseline, publish ``inspect_unhealthy`` if warranted."""
    observation = runtime.inspect(container_id)
    if observation is None:
        log.debug("inspect_skipped_container_missing", game_id=game_id, container_id=container_id)
        metrics.INSPECTIONS.labels("missing").inc()
        return {"game_id": game_id, "unhealthy": False, "skipped": "container missing"}
    judgement = judge_inspect(observation, baselines.get(game_id))
    baselines.put(game_id, judgement.baseline)
    metrics.INSPECTIONS.labels("unhealthy" if judgement.unhealthy else "healthy").inc()
    if judgement.unhealthy:
        publish(
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
    return {"game_id": game_id, "unhealthy": judgement.unhealthy, "reasons": list(judgement.reasons)}
