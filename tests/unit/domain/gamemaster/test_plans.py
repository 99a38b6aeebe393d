"""The reaction to each event type (seed 001 ``planFor``) and the debounce rule."""

from __future__ import annotations

import pytest

from galaxy_tasks.domain.gamemaster.plans import Summary, plan_for, should_publish
from galaxy_tasks.domain.health_events import HealthEventType


@pytest.mark.parametrize(
    ("event_type", "summary", "transition"),
    [
        ("container_started", "healthy", None),
        ("probe_recovered", "healthy", ("engine_unreachable", "running")),
        ("probe_failed", "probe_failed", None),
        ("inspect_unhealthy", "inspect_unhealthy", None),
        ("container_exited", "exited", ("running", "engine_unreachable")),
        ("container_oom", "oom", ("running", "engine_unreachable")),
        ("container_disappeared", "disappeared", ("running", "engine_unreachable")),
    ],
)
def test_each_of_the_seven_event_types_has_the_seed_plan(
    event_type: str, summary: str, transition: tuple[str, str] | None
) -> None:
    plan = plan_for(event_type)
    assert plan is not None
    assert plan.summary == summary
    if transition is None:
        assert plan.transition is None
    else:
        assert plan.transition is not None
        assert (plan.transition.source, plan.transition.target) == transition


def test_the_event_type_enum_lists_exactly_the_seven_contract_values() -> None:
    assert {t.value for t in HealthEventType} == {
        "container_started",
        "container_exited",
        "container_oom",
        "container_disappeared",
        "inspect_unhealthy",
        "probe_failed",
        "probe_recovered",
    }


def test_summary_strings_are_the_seed_ones() -> None:
    assert {s.value for s in Summary} == {
        "healthy",
        "probe_failed",
        "inspect_unhealthy",
        "exited",
        "oom",
        "disappeared",
    }


@pytest.mark.parametrize(
    "event_type",
    ["", "container_paused", "CONTAINER_OOM", " container_oom", "container_oom ", "runtime_snapshot_update"],
)
def test_unknown_event_type_has_no_plan(event_type: str) -> None:
    assert plan_for(event_type) is None


def test_container_started_never_moves_the_status() -> None:
    plan = plan_for("container_started")
    assert plan is not None
    assert plan.transition is None


def test_debounce_publishes_on_a_transition_even_with_the_same_summary() -> None:
    assert should_publish(status_changed=True, summary="healthy", last_published="healthy")


def test_debounce_publishes_the_first_summary_of_a_game() -> None:
    assert should_publish(status_changed=False, summary="probe_failed", last_published=None)


def test_debounce_publishes_a_summary_that_differs_from_the_last_published() -> None:
    assert should_publish(status_changed=False, summary="oom", last_published="probe_failed")


def test_debounce_suppresses_a_repeated_summary_without_transition() -> None:
    assert not should_publish(status_changed=False, summary="probe_failed", last_published="probe_failed")


def test_debounce_treats_an_empty_last_summary_as_published() -> None:
    assert should_publish(status_changed=False, summary="healthy", last_published="")
    assert not should_publish(status_changed=False, summary="", last_published="")
