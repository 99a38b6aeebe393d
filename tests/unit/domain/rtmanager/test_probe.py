"""Probe streaks: one probe_failed at the failure threshold; passing again only at the success threshold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from galaxy_tasks.domain.rtmanager.probe import ProbeState, ProbeThresholds, ProbeVerdict, observe_probe


def _run(results: list[bool], thresholds: ProbeThresholds, container: str = "c1") -> list[tuple[ProbeVerdict, int]]:
    state: ProbeState | None = None
    verdicts: list[tuple[ProbeVerdict, int]] = []
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


def test_a_new_failure_is_published_only_after_the_success_threshold_passed_the_probe_again() -> None:
    thresholds = ProbeThresholds(failure=2, success=2)
    # fail, fail -> failed; one success is not enough to pass, so two more failures say nothing new
    assert _run([False, False, True, False, False], thresholds) == [(ProbeVerdict.FAILED, 2)]
    # two successes pass it again: the next streak of two failures is a new probe_failed
    assert _run([False, False, True, True, False, False], thresholds) == [
        (ProbeVerdict.FAILED, 2),
        (ProbeVerdict.FAILED, 2),
    ]


def test_probes_never_publish_a_recovery_themselves() -> None:
    verdicts = _run([False] * 4 + [True] * 5, ProbeThresholds(failure=3, success=2))
    assert verdicts == [(ProbeVerdict.FAILED, 3)]


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
def test_between_two_failed_verdicts_the_success_threshold_was_reached(
    results: list[bool], failure: int, success: int
) -> None:
    state: ProbeState | None = None
    successes_since_failed: int | None = None
    longest = 0
    for ok in results:
        step = observe_probe(state, "c1", ok=ok, thresholds=ProbeThresholds(failure, success))
        state = step.state
        if successes_since_failed is not None:
            successes_since_failed = successes_since_failed + 1 if ok else 0
            longest = max(longest, successes_since_failed)
        if step.verdict is ProbeVerdict.FAILED:
            assert successes_since_failed is None or longest >= success
            assert step.count == failure
            successes_since_failed, longest = 0, 0
