"""Inspect judgement (seed 003) with a baseline tied to the container id."""

from __future__ import annotations

from galaxy_tasks.domain.rtmanager.inspect import InspectBaseline, InspectObservation, judge_inspect


def _seen(restarts: int, state: str = "running", health: str = "", container: str = "c1") -> InspectObservation:
    return InspectObservation(container, state, restarts, health)


def test_the_first_observation_only_records_the_baseline() -> None:
    judgement = judge_inspect(_seen(4), None)
    assert (judgement.unhealthy, judgement.baseline) == (False, InspectBaseline("c1", 4))


def test_a_growing_restart_count_of_the_same_container_is_unhealthy() -> None:
    judgement = judge_inspect(_seen(5), InspectBaseline("c1", 4))
    assert judgement.unhealthy
    assert judgement.reasons == ("restart_count 4 -> 5",)
    assert judgement.baseline == InspectBaseline("c1", 5)


def test_an_unchanged_running_container_is_healthy() -> None:
    assert not judge_inspect(_seen(4), InspectBaseline("c1", 4)).unhealthy


def test_a_new_container_id_rebaselines_instead_of_comparing_restart_counts() -> None:
    judgement = judge_inspect(_seen(9, container="c2"), InspectBaseline("c1", 0))
    assert (judgement.unhealthy, judgement.baseline) == (False, InspectBaseline("c2", 9))


def test_a_smaller_restart_count_rebaselines() -> None:
    judgement = judge_inspect(_seen(0), InspectBaseline("c1", 7))
    assert (judgement.unhealthy, judgement.baseline) == (False, InspectBaseline("c1", 0))


def test_a_state_other_than_running_is_unhealthy_even_at_the_first_observation() -> None:
    judgement = judge_inspect(_seen(0, state="restarting"), None)
    assert judgement.unhealthy
    assert judgement.reasons == ("state restarting",)


def test_a_failing_healthcheck_is_unhealthy_and_all_reasons_are_given() -> None:
    judgement = judge_inspect(_seen(2, state="running", health="unhealthy"), InspectBaseline("c1", 1))
    assert judgement.reasons == ("restart_count 1 -> 2", "health unhealthy")
