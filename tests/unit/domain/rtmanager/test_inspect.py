"""Inspect judgement (seed 003) with a baseline tied to the container id."""

from __future__ import annotations

import pytest

from galaxy_tasks.domain.rtmanager.inspect import (
    InspectBaseline,
    InspectObservation,
    judge_inspect,
    needs_inspect,
    uptime_upper_bound_seconds,
)


def _seen(restarts: int, state: str = "running", health: str = "", container: str = "c1") -> InspectObservation:
    return InspectObservation(container, state, restarts, health)


def test_the_first_observation_only_records_the_baseline() -> None:
    judgement = judge_inspect(_seen(4), None)
    assert (judgement.unhealthy, judgement.baseline) == (False, InspectBaseline("c1", 4))


def test_a_growing_restart_count_of_the_same_container_is_unhealthy() -> None:
    judgement = judge_inspect(_seen(5), InspectBaseline("c1", 4))
    assert judgement.unhealthy
    assert judgement.reasons == ("restart_count 4 -> 5",)
    assert judgement.baseline == InspectBaseline("c1", 5, reported="c1|running||5")


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


@pytest.mark.parametrize(
    ("status", "upper"),
    [
        ("Up Less than a second", 1),
        ("Up 1 second", 2),
        ("Up 42 seconds", 43),
        ("Up About a minute", 120),
        ("Up 5 minutes (healthy)", 360),
        ("Up About an hour", 5400),
        ("Up 3 hours (unhealthy)", 3 * 3600 + 1800),
        ("Up 4 days", 5 * 86400),
        ("Restarting (1) 2 seconds ago", None),
        ("Exited (3) 5 seconds ago", None),
        ("Up 3 fortnights", None),
    ],
)
def test_uptime_upper_bound_covers_every_wording_of_dockers_human_duration(status: str, upper: float | None) -> None:
    assert uptime_upper_bound_seconds(status) == upper


NOW = 1_800_000_000_000


def _needs(status: str, baseline: InspectBaseline | None, state: str = "running", container: str = "c1") -> bool:
    return needs_inspect(container_id=container, state=state, status=status, baseline=baseline, now_ms=NOW)


def test_the_list_vouches_for_a_running_container_up_since_the_start_its_baseline_saw() -> None:
    started_an_hour_and_a_bit_ago = InspectBaseline("c1", 0, NOW - 3700_000)
    assert not _needs("Up About an hour", started_an_hour_and_a_bit_ago)
    assert not _needs("Up 5 seconds", InspectBaseline("c1", 0, NOW - 5_000))


def test_an_uptime_too_short_for_the_baselines_start_means_a_restart_and_an_inspect() -> None:
    assert _needs("Up 5 seconds", InspectBaseline("c1", 2, NOW - 3600_000))


@pytest.mark.parametrize(
    ("status", "baseline", "state", "container"),
    [
        ("Up 5 minutes", None, "running", "c1"),
        ("Up 5 minutes", InspectBaseline("c0", 0, NOW - 300_000), "running", "c1"),
        ("Up 5 minutes", InspectBaseline("c1", 0, 0), "running", "c1"),
        ("Up 5 minutes (unhealthy)", InspectBaseline("c1", 0, NOW - 300_000), "running", "c1"),
        ("Restarting (1) 1 second ago", InspectBaseline("c1", 0, NOW - 300_000), "restarting", "c1"),
        ("Up for a while", InspectBaseline("c1", 0, NOW - 300_000), "running", "c1"),
    ],
)
def test_whatever_the_list_cannot_vouch_for_is_inspected(
    status: str, baseline: InspectBaseline | None, state: str, container: str
) -> None:
    assert _needs(status, baseline, state, container)


def test_an_unchanged_unhealthy_judgement_is_published_once_not_every_sweep() -> None:
    seen = InspectObservation("c1", "running", 0, "unhealthy", 1)
    first = judge_inspect(seen, InspectBaseline("c1", 0, 1))
    again = judge_inspect(seen, first.baseline)
    assert (first.publish, again.unhealthy, again.publish) == (True, True, False)


def test_a_healthy_judgement_resets_so_the_same_problem_later_is_published_again() -> None:
    sick = InspectObservation("c1", "running", 0, "unhealthy", 1)
    first = judge_inspect(sick, InspectBaseline("c1", 0, 1))
    healthy = judge_inspect(InspectObservation("c1", "running", 0, "healthy", 1), first.baseline)
    assert (healthy.unhealthy, healthy.baseline.reported) == (False, "")
    assert judge_inspect(sick, healthy.baseline).publish


def test_a_restart_the_listener_published_as_a_crash_is_not_reported_again() -> None:
    baseline = InspectBaseline("c1", 0, 1)
    # the listener published the crash (ack 1) while Docker was restarting it ...
    restarting = judge_inspect(InspectObservation("c1", "restarting", 0, "", 1), baseline, acked_restarts=1)
    assert not restarting.unhealthy
    # ... and the next inspect sees it running with restart count 1: explained by that same crash
    back = judge_inspect(InspectObservation("c1", "running", 1, "", 2), restarting.baseline, acked_restarts=1)
    assert (back.unhealthy, back.baseline.acked_restarts) == (False, 1)


def test_a_restart_no_crash_was_published_for_is_reported() -> None:
    judged = judge_inspect(InspectObservation("c1", "running", 2, "", 9), InspectBaseline("c1", 0, 1), acked_restarts=1)
    assert judged.reasons == ("restart_count 0 -> 2",)
    assert judged.publish
