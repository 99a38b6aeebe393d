"""The health consumer owns exactly two edges of the status graph (SPEC §4, seed 004)."""

from __future__ import annotations

import itertools

import pytest

from galaxy_tasks.domain.gamemaster.statuses import (
    ENGINE_LOST,
    ENGINE_RECOVERED,
    HEALTH_CONSUMER_TRANSITIONS,
    RuntimeStatus,
    Transition,
    is_allowed,
)


def test_engine_lost_moves_running_to_engine_unreachable() -> None:
    assert Transition(RuntimeStatus.RUNNING, RuntimeStatus.ENGINE_UNREACHABLE) == ENGINE_LOST


def test_engine_recovered_moves_engine_unreachable_to_running() -> None:
    assert Transition(RuntimeStatus.ENGINE_UNREACHABLE, RuntimeStatus.RUNNING) == ENGINE_RECOVERED


def test_the_consumer_owns_only_the_two_edges() -> None:
    assert frozenset({ENGINE_LOST, ENGINE_RECOVERED}) == HEALTH_CONSUMER_TRANSITIONS


@pytest.mark.parametrize(("source", "target"), [("running", "engine_unreachable"), ("engine_unreachable", "running")])
def test_is_allowed_accepts_the_two_edges_given_as_plain_strings(source: str, target: str) -> None:
    assert is_allowed(source, target)


def test_is_allowed_rejects_every_other_pair_of_statuses() -> None:
    allowed = {("running", "engine_unreachable"), ("engine_unreachable", "running")}
    for source, target in itertools.product([s.value for s in RuntimeStatus], repeat=2):
        assert is_allowed(source, target) == ((source, target) in allowed), (source, target)


def test_is_allowed_rejects_unknown_statuses() -> None:
    assert not is_allowed("paused", "running")
    assert not is_allowed("running", "")


@pytest.mark.parametrize(
    ("status", "stored"),
    [
        (RuntimeStatus.RUNNING, "running"),
        (RuntimeStatus.ENGINE_UNREACHABLE, "engine_unreachable"),
        (RuntimeStatus.GENERATION_IN_PROGRESS, "generation_in_progress"),
        (RuntimeStatus.GENERATION_FAILED, "generation_failed"),
        (RuntimeStatus.STOPPED, "stopped"),
        (RuntimeStatus.FINISHED, "finished"),
    ],
)
def test_status_values_are_the_stored_strings(status: RuntimeStatus, stored: str) -> None:
    assert status.value == stored
