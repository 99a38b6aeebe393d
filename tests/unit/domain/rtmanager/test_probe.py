"""Probe streaks: one probe_failed at the failure threshold, one probe_recovered at the success threshold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from galaxy_tasks.domain.rtmanager.probe import ProbeState, ProbeThresholds, ProbeVerdict, observe_probe


def _run(results: list[bool], thresholds: ProbeThresholds, container: str = "c1") -> list[tuple[ProbeVerdict, int]]:
    state: ProbeState | None = None
    verdicts = []
    for ok in results:
        step = observe_probe(state, container, ok=ok, thresholds=thresholds)
        state = step.state
        if step.verdict is not None:
            verdicts.append((step.verdict, step.count))
    return verdicts


def test_failed_once_when_consecutive_failures_reach_the_threshold() -> None:
    assert _run([False, False, True, False, False, False, False, False], ProbeThresholds(failure=3)) == [
        (ProbeVerdict.FAILED, 3)
    ]


def test_recovered_once_after_enough_consecutive_successes_with_the_prior_failure_streak() -> None:
    results = [False] * 4 + [True, False, True, True, True]
    assert _run(results, ProbeThresholds(failure=3, success=2)) == [
        (ProbeVerdict.FAILED, 3),
        (ProbeVerdict.RECOVERED, 1),
    ]


def test_successes_without_a_failure_published_never_recover() -> None:
    assert _run([False, False, True, True, True], ProbeThresholds(failure=3)) == []


def test_a_new_container_id_resets_the_streaks() -> None:
    thresholds = ProbeThresholds(failure=2)
    failing = observe_probe(
        observe_probe(None, "c1", ok=False, thresholds=thresholds).state, "c1", ok=False, thresholds=thresholds
    )
    assert failing.verdict is ProbeVerdict.FAILED
    fresh = observe_probe(failing.state, "c2", ok=True, thresholds=thresholds)
    assert fresh.verdict is None
    assert fresh.state == ProbeState("c2", 0, 1)


def test_thresholds_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ProbeThresholds(failure=0)


@given(results=st.lists(st.booleans(), max_size=60), failure=st.integers(1, 4), success=st.integers(1, 3))
def test_verdicts_alternate_failed_then_recovered_never_twice_in_a_row(
    results: list[bool], failure: int, success: int
) -> None:
    verdicts = [v for v, _ in _run(results, ProbeThresholds(failure, success))]
    assert verdicts == [ProbeVerdict.FAILED, ProbeVerdict.RECOVERED] * (len(verdicts) // 2) + (
        [ProbeVerdict.FAILED] if len(verdicts) % 2 else []
    )
