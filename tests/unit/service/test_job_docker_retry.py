"""The start/stop jobs' retry of an unreachable Docker: backoff, a deadline, and nothing else retried."""

from __future__ import annotations

from typing import Any, cast

import pytest

from galaxy_tasks.domain.errors import BackendUnavailable, DockerUnavailable, PostgresUnavailable
from galaxy_tasks.service.jobs import DockerRetry, EngineSettings, JobContext


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def context(clock: Clock, window: float) -> JobContext:
    settings = EngineSettings("http://{game_id}", "host", "64m", 1.0, {"Name": "no"}, False, 5)
    unused = cast(Any, None)
    return JobContext(
        queue=unused,
        streams=unused,
        engines=unused,
        results_outbox=unused,
        health_outbox=unused,
        settings=settings,
        docker_retry_seconds=window,
        clock=clock,
        sleep=clock.sleep,
    )


def test_an_unreachable_docker_is_retried_with_growing_waits_until_it_answers() -> None:
    clock = Clock()
    answers = iter([DockerUnavailable("refused")] * 3 + [None])

    def call() -> str:
        answer = next(answers)
        if answer is not None:
            raise answer
        return "ok"

    retry = DockerRetry(context(clock, 30), game_id="g", job_id="j")
    assert retry(call) == "ok"
    assert clock.sleeps == [0.2, 0.4, 0.8]
    assert retry.attempts == 3


def test_the_retry_gives_up_at_the_deadline_with_the_last_error() -> None:
    clock = Clock()

    def call() -> str:
        raise DockerUnavailable("socket gone")

    with pytest.raises(BackendUnavailable, match="socket gone"):
        DockerRetry(context(clock, 3), game_id="g", job_id="j")(call)
    assert sum(clock.sleeps) == pytest.approx(3)
    assert max(clock.sleeps) <= 5


def test_postgresql_or_redis_unavailable_is_not_retried_here_but_left_to_the_task() -> None:
    clock = Clock()

    def call() -> str:
        raise PostgresUnavailable("down")

    with pytest.raises(BackendUnavailable, match="postgresql"):
        DockerRetry(context(clock, 30), game_id="g", job_id="j")(call)
    assert clock.sleeps == []
