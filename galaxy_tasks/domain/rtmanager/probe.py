"""Consecutive-result probing of an engine's health endpoint, kubelet style.

``probe_failed`` once, when consecutive failures reach the failure threshold;
the probe counts as passing again once consecutive successes reach the
success threshold (then a new failure streak can fail it again).  Streaks
belong to a container: a new container id starts from nothing.

Recovery is not decided here: a game that went down for *any* reason comes
back through the level-triggered rule of :mod:`.convergence` (an inspect and
the success threshold of probes, all after the down event), which publishes
``probe_recovered``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class ProbeVerdict(StrEnum):
    FAILED = "probe_failed"


@dataclass(frozen=True)
class ProbeThresholds:
    failure: int = 3
    success: int = 1

    def __post_init__(self) -> None:
        if self.failure < 1 or self.success < 1:
            raise ValueError("probe thresholds must be at least 1")


@dataclass(frozen=True)
class ProbeState:
    """A game's probe streaks; shared by every worker so any of them can probe next."""

    container_id: str
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    failing: bool = False
    """``probe_failed`` was published and the success threshold was not reached since."""
    last_failure_streak: int = 0
    """While failing: the length of the latest failure streak (``prior_failures`` on recovery)."""


@dataclass(frozen=True)
class ProbeStep:
    state: ProbeState
    verdict: ProbeVerdict | None = None
    count: int = 0
    """``consecutive_failures`` of ``probe_failed``."""


def observe_probe(state: ProbeState | None, container_id: str, *, ok: bool, thresholds: ProbeThresholds) -> ProbeStep:
    """Fold one probe result into the game's streaks; at most one verdict per call."""
    if state is None or state.container_id != container_id:
        state = ProbeState(container_id)
    if ok:
        successes = state.consecutive_successes + 1
        if state.failing and successes >= thresholds.success:
            return ProbeStep(ProbeState(container_id, 0, successes))
        return ProbeStep(replace(state, consecutive_failures=0, consecutive_successes=successes))
    failures = state.consecutive_failures + 1
    failed = replace(state, consecutive_failures=failures, consecutive_successes=0)
    if state.failing:
        return ProbeStep(replace(failed, last_failure_streak=failures))
    if failures >= thresholds.failure:
        return ProbeStep(replace(failed, failing=True, last_failure_streak=failures), ProbeVerdict.FAILED, failures)
    return ProbeStep(failed)
