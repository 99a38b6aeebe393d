"""Probing running engines' health endpoints (SPEC §5 "RTM": probe), as a sweep and per-engine tasks.

The sweep lists the managed containers once and names the running games to
probe: those whose container is listed as running and whose start-up grace is
over (the listed uptime's upper bound is at least the grace, so a fresh engine
is left alone).  Streaks live in shared storage, so a worker restart changes
nothing, and the sweep spreads the probes over the interval with a random
delay, so restarted workers do not probe everything at once.

A probe of a game that is down is evidence for its recovery (SPEC §5
"Recoveries"): ``probe_recovered`` comes from there, once an inspect and the
success threshold of probes started in the same down period agree.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from galaxy_tasks import metrics
from galaxy_tasks.domain.rtmanager.convergence import RecoveryEvidence
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.inspect import DOCKER_STATE_RUNNING, uptime_upper_bound_seconds
from galaxy_tasks.domain.rtmanager.probe import ProbeThresholds, ProbeVerdict, observe_probe
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.rtmanager import (
    ContainerRuntime,
    FollowUp,
    FollowUps,
    FollowUpTask,
    Prober,
    ProbeStateStore,
    RunningRecords,
)
from galaxy_tasks.service.health_publisher import HealthPublisher

log = get_logger(__name__)


@dataclass
class ProbePlan:
    to_probe: list[tuple[str, str, str, int]] = field(default_factory=list)
    """``(game_id, container_id, engine_endpoint, down_seq)``."""
    in_grace: list[str] = field(default_factory=list)
    not_running: list[str] = field(default_factory=list)
    pruned: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "to_probe": [game for game, *_ in self.to_probe],
            "in_grace": self.in_grace,
            "not_running": self.not_running,
            "pruned_states": self.pruned,
        }


def plan_probe_sweep(
    records: RunningRecords, runtime: ContainerRuntime, states: ProbeStateStore, *, grace_seconds: float
) -> ProbePlan:
    running = records.running()
    plan = ProbePlan(pruned=states.prune([r.game_id for r in running]))
    if not running:
        return plan
    listed = runtime.list_managed()
    for record in running:
        row = listed.get(record.container_id) if record.container_id else None
        if row is None or row.state != DOCKER_STATE_RUNNING or not record.engine_endpoint:
            plan.not_running.append(record.game_id)  # the listener, inspect and reconciler report these
            continue
        uptime = uptime_upper_bound_seconds(row.status)
        if uptime is not None and uptime < grace_seconds:
            plan.in_grace.append(record.game_id)
            continue
        plan.to_probe.append((record.game_id, record.container_id, record.engine_endpoint, record.down_seq))
    return plan


def run_probe_sweep(
    records: RunningRecords,
    runtime: ContainerRuntime,
    states: ProbeStateStore,
    follow_ups: FollowUps,
    *,
    grace_seconds: float,
    spread_seconds: float,
    expires_seconds: float,
    delay: Callable[[float, float], float] = random.uniform,
) -> ProbePlan:
    """Ask for a probe of every running engine past its start-up grace, each after a random delay within
    ``spread_seconds`` (restarted workers do not probe everything at once)."""
    plan = plan_probe_sweep(records, runtime, states, grace_seconds=grace_seconds)
    for game_id, container_id, endpoint, down_seq in plan.to_probe:
        follow_ups.send(
            FollowUp(
                FollowUpTask.PROBE,
                (game_id, container_id, endpoint),
                down_seq=down_seq,
                delay_seconds=delay(0, spread_seconds),
                expires_seconds=expires_seconds,
            )
        )
    return plan


def probe_engine(
    prober: Prober,
    states: ProbeStateStore,
    publisher: HealthPublisher,
    *,
    game_id: str,
    container_id: str,
    endpoint: str,
    thresholds: ProbeThresholds,
    now_ms: int,
    down_seq: int = 0,
) -> dict[str, object]:
    """Probe one engine, fold the result into its streaks and (while down) into its recovery evidence.

    ``down_seq``: the game's down period when this probe was asked for (0: not down).
    """
    ok, error = prober.probe(endpoint)
    metrics.PROBES.labels("ok" if ok else "failed").inc()
    step = observe_probe(states.get(game_id), container_id, ok=ok, thresholds=thresholds)
    states.put(game_id, step.state)
    if step.verdict is ProbeVerdict.FAILED:
        publisher.publish(
            HealthEvent.probe_failed(game_id, container_id, now_ms, consecutive_failures=step.count, last_error=error)
        )
        log.info("probe_verdict", game_id=game_id, container_id=container_id, verdict=step.verdict.value)
    recovered = None
    if down_seq and step.verdict is None:
        failures = step.state.consecutive_failures

        def fold(evidence: RecoveryEvidence) -> RecoveryEvidence:
            return evidence.with_probe(container_id, ok=ok, failures=failures)

        recovered = publisher.observe_recovery(
            game_id, down_seq, fold, success_threshold=thresholds.success, now_ms=now_ms
        )
    return {
        "game_id": game_id,
        "ok": ok,
        "error": error,
        "verdict": None if step.verdict is None else step.verdict.value,
        "recovered": recovered is not None,
    }
