"""The inspect sweep's plan and the per-container inspect, on in-memory fakes."""

from __future__ import annotations

from collections.abc import Iterable

from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.inspect import InspectBaseline, InspectObservation
from galaxy_tasks.ports import ListedContainer, RunningRecord
from galaxy_tasks.service.inspect_sweep import inspect_container, plan_inspect_sweep

NOW = 1_800_000_000_000


class Records:
    def __init__(self, *records: RunningRecord) -> None:
        self.records = list(records)

    def running(self) -> list[RunningRecord]:
        return list(self.records)


class Runtime:
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


class Baselines:
    def __init__(self, **known: InspectBaseline) -> None:
        self.known = dict(known)

    def get(self, game_id: str) -> InspectBaseline | None:
        return self.known.get(game_id)

    def all(self) -> dict[str, InspectBaseline]:
        return dict(self.known)

    def put(self, game_id: str, baseline: InspectBaseline) -> None:
        self.known[game_id] = baseline

    def prune(self, keep: Iterable[str]) -> int:
        wanted = set(keep)
        stale = [g for g in self.known if g not in wanted]
        for game_id in stale:
            del self.known[game_id]
        return len(stale)


def test_with_no_running_game_the_sweep_prunes_and_makes_no_docker_call() -> None:
    runtime = Runtime({}, {})
    plan = plan_inspect_sweep(Records(), runtime, Baselines(old=InspectBaseline("c", 0, 1)), now_ms=NOW)
    assert (plan.pruned, plan.to_inspect, runtime.list_calls) == (1, [], 0)


def test_one_list_call_per_sweep_and_inspects_only_what_the_list_cannot_vouch_for() -> None:
    records = Records(RunningRecord("g1", "c1", ""), RunningRecord("g2", "c2", ""), RunningRecord("g3", "c3", ""))
    runtime = Runtime(
        {
            "c1": ListedContainer("c1", "g1", "running", "Up 5 minutes"),
            "c2": ListedContainer("c2", "g2", "running", "Up 5 minutes (unhealthy)"),
        },
        {},
    )
    baselines = Baselines(g1=InspectBaseline("c1", 0, NOW - 301_000), g2=InspectBaseline("c2", 0, NOW - 301_000))
    plan = plan_inspect_sweep(records, runtime, baselines, now_ms=NOW)
    assert runtime.list_calls == 1
    assert plan.vouched == ["g1"]
    assert plan.to_inspect == [("g2", "c2")]
    assert plan.missing == ["g3"]


def test_inspecting_a_restarted_container_publishes_once_and_moves_the_baseline() -> None:
    runtime = Runtime({}, {"c1": InspectObservation("c1", "running", 3, "", NOW - 2_000)})
    baselines = Baselines(g1=InspectBaseline("c1", 2, NOW - 600_000))
    published: list[HealthEvent] = []
    result = inspect_container(runtime, baselines, published.append, game_id="g1", container_id="c1", now_ms=NOW)
    assert result["unhealthy"] is True
    assert published == [HealthEvent.inspect_unhealthy("g1", "c1", NOW, restart_count=3, state="running", health="")]
    assert baselines.get("g1") == InspectBaseline("c1", 3, NOW - 2_000)


def test_a_container_gone_by_inspect_time_publishes_nothing() -> None:
    published: list[HealthEvent] = []
    result = inspect_container(
        Runtime({}, {}), Baselines(), published.append, game_id="g1", container_id="c1", now_ms=NOW
    )
    assert (result["skipped"], published) == ("container missing", [])
