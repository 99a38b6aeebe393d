"""Scripted stand-ins of the health observers' ports: fixed answers, counting the calls.

Where :mod:`galaxy_tasks.testing.docker` simulates a Docker host through
time, these answer exactly what a test scripted — a fixed list of running
records, fixed ``docker ps`` and inspect results, probe answers in turn — so a
unit test of one sweep pins the conversation (what was listed, inspected or
probed) as well as the outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from galaxy_tasks.domain.rtmanager.inspect import InspectObservation
from galaxy_tasks.ports.rtmanager import ListedContainer, RunningRecord


class FakeRunningRecords:
    """``RunningRecords`` over a list."""

    def __init__(self, *records: RunningRecord) -> None:
        self.records = list(records)

    def running(self) -> list[RunningRecord]:
        return list(self.records)

    def exited(self) -> list[RunningRecord]:
        return []

    def running_container(self, game_id: str) -> str | None:
        return next((r.container_id for r in self.records if r.game_id == game_id), None)


class FakeContainerRuntime:
    """``ContainerRuntime``: a fixed list and fixed inspect results, counting the calls."""

    def __init__(self, listed: dict[str, ListedContainer], observations: dict[str, InspectObservation]) -> None:
        self.listed, self.observations = listed, observations
        self.list_calls = 0
        self.inspected: list[str] = []

    def list_managed(self) -> dict[str, ListedContainer]:
        self.list_calls += 1
        return dict(self.listed)

    def inspect(self, container_id: str) -> InspectObservation | None:
        self.inspected.append(container_id)
        return self.observations.get(container_id)


class FakeProber:
    """``Prober`` answering the given results in turn."""

    def __init__(self, *results: tuple[bool, str]) -> None:
        self.results = list(results)

    def probe(self, endpoint: str) -> tuple[bool, str]:
        return self.results.pop(0)


if TYPE_CHECKING:  # the fakes must keep matching the protocols they stand in for
    from galaxy_tasks.ports.rtmanager import ContainerRuntime, Prober, RunningRecords

    def _conforms() -> None:
        _records: RunningRecords = FakeRunningRecords()
        _runtime: ContainerRuntime = FakeContainerRuntime({}, {})
        _prober: Prober = FakeProber()
