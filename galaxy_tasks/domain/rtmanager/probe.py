"""Consecutive-result probing of an engine's health endpoint, kubelet/Consul style.

``probe_failed`` once, when consecutive failures reach the failure threshold;
``probe_recovered`` once, when after that consecutive successes reach the
success threshold.  Streaks belong to a container: a new container id starts
from nothing (and a failing game whose container was replaced does not
"recover" by accident).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class ProbeVerdict(StrEnum):
    FAILED = "probe_failed"
    RECOVERED = "probe_recovered"


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
    """``probe_failed`` was published and no ``probe_recovered`` since."""
    last_failure_streak: int = 0
    """While failing: the length of the latest failure streak (``prior_failures`` on recovery)."""


@dataclass(frozen=True)
class ProbeStep:
    state: ProbeState
    verdict: ProbeVerdict | None = None
    count: int = 0
    """``consecutive_failures`` of ``probe_failed``, ``prior_failures`` of ``probe_recovered``."""


def observe_probe(state: ProbeState | None, container_id: str, *, ok: bool, thresholds: ProbeThresholds) -> ProbeStep:
    """Fold one probe result into the game's streaks; at most one verdict per call."""
    if state is None or state.container_id != container_id:
        state = ProbeState(container_id)
    if ok:
        successes = state.consecutive_successes + 1
        if state.failing and successes >= thresholds.success:
            return ProbeStep(ProbeState(container_id, 0, successes), ProbeVerdict.RECOVERED, state.last_failure_streak)
        return ProbeStep(replace(state, consecutive_failures=0, consecutive_successes=successes))
    failures = state.consecutive_failures + 1
    failed = replace(state, consecutive_failures=failures, consecutive_successes=0)
    if state.failing:
        return ProbeStep(replace(failed, last_failure_streak=failures))
    if failures >= thresholds.failure:
        return ProbeStep(replace(failed, failing=True, last_failure_streak=failures), ProbeVerdict.FAILED, failures)
    return ProbeStep(failed)
