"""Judging one Docker inspect of a running game's container (seed ``003``).

``inspect_unhealthy`` when the restart count grew since the previous
observation of the *same* container, the state is not ``running``, or the
Docker HEALTHCHECK says ``unhealthy``.  The baseline is per game and tied to
the container id: a new container, or a restart count smaller than the
baseline's (Docker re-created it), only records a new baseline — the seed's
"first observation only records the baseline" rule, applied to each container's life.
"""

from __future__ import annotations

from dataclasses import dataclass

DOCKER_STATE_RUNNING = "running"
DOCKER_HEALTH_UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class InspectBaseline:
    """What the previous inspect of a game saw; shared by every worker."""

    container_id: str
    restart_count: int


@dataclass(frozen=True)
class InspectObservation:
    container_id: str
    state: str
    """Docker ``State.Status``: ``running``, ``restarting``, ``exited`` …"""
    restart_count: int
    health: str = ""
    """Docker ``State.Health.Status`` (``healthy``, ``unhealthy``, ``starting``); empty without a HEALTHCHECK."""


@dataclass(frozen=True)
class InspectJudgement:
    baseline: InspectBaseline
    """The baseline to store for the next inspect."""
    unhealthy: bool
    reasons: tuple[str, ...] = ()


def judge_inspect(observation: InspectObservation, baseline: InspectBaseline | None) -> InspectJudgement:
    """Compare ``observation`` with the game's stored ``baseline`` (``None``: never seen)."""
    new_baseline = InspectBaseline(observation.container_id, observation.restart_count)
    reasons: list[str] = []
    same_life = (
        baseline is not None
        and baseline.container_id == observation.container_id
        and observation.restart_count >= baseline.restart_count
    )
    if same_life and baseline is not None and observation.restart_count > baseline.restart_count:
        reasons.append(f"restart_count {baseline.restart_count} -> {observation.restart_count}")
    if observation.state != DOCKER_STATE_RUNNING:
        reasons.append(f"state {observation.state}")
    if observation.health == DOCKER_HEALTH_UNHEALTHY:
        reasons.append("health unhealthy")
    return InspectJudgement(new_baseline, bool(reasons), tuple(reasons))
