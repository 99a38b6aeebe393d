"""The inspect sweep's plan and the per-container inspect, on in-memory fakes."""

from __future__ import annotations

from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.inspect import InspectBaseline, InspectObservation
from galaxy_tasks.ports.rtmanager import ListedContainer, RunningRecord
from galaxy_tasks.service.health_publisher import HealthPublisher
from galaxy_tasks.service.inspect_sweep import inspect_container, plan_inspect_sweep
from galaxy_tasks.testing.scripted import FakeContainerRuntime, FakeRunningRecords
from galaxy_tasks.testing.store import FakeHealthStream, FakeInspectBaselines, FakeRuntimeStore

NOW = 1_800_000_000_000


def test_with_no_running_game_the_sweep_prunes_and_makes_no_docker_call() -> None:
    runtime = FakeContainerRuntime({}, {})
    plan = plan_inspect_sweep(
        FakeRunningRecords(), runtime, FakeInspectBaselines(old=InspectBaseline("c", 0, 1)), now_ms=NOW
    )
    assert (plan.pruned, plan.to_inspect, runtime.list_calls) == (1, [], 0)


def test_one_list_call_per_sweep_and_inspects_only_what_the_list_cannot_vouch_for() -> None:
    records = FakeRunningRecords(
        RunningRecord("g1", "c1", ""), RunningRecord("g2", "c2", ""), RunningRecord("g3", "c3", "")
    )
    runtime = FakeContainerRuntime(
        {
            "c1": ListedContainer("c1", "g1", "running", "Up 5 minutes"),
            "c2": ListedContainer("c2", "g2", "running", "Up 5 minutes (unhealthy)"),
        },
        {},
    )
    baselines = FakeInspectBaselines(
        g1=InspectBaseline("c1", 0, NOW - 301_000), g2=InspectBaseline("c2", 0, NOW - 301_000)
    )
    plan = plan_inspect_sweep(records, runtime, baselines, now_ms=NOW)
    assert runtime.list_calls == 1
    assert plan.vouched == ["g1"]
    assert plan.to_inspect == [("g2", "c2", 0)]
    assert plan.missing == ["g3"]


def test_inspecting_a_restarted_container_publishes_once_and_moves_the_baseline() -> None:
    runtime = FakeContainerRuntime({}, {"c1": InspectObservation("c1", "running", 3, "", NOW - 2_000)})
    baselines = FakeInspectBaselines(g1=InspectBaseline("c1", 2, NOW - 600_000))
    store = FakeRuntimeStore()
    publisher = HealthPublisher(store, FakeHealthStream())
    current = FakeRunningRecords(RunningRecord("g1", "c1", ""))
    result = inspect_container(
        runtime, baselines, publisher, records=current, game_id="g1", container_id="c1", now_ms=NOW
    )
    assert result["unhealthy"] is True
    assert store.events == [HealthEvent.inspect_unhealthy("g1", "c1", NOW, restart_count=3, state="running", health="")]
    assert baselines.get("g1") == InspectBaseline("c1", 3, NOW - 2_000, reported="c1|running||3")


def test_a_container_gone_by_inspect_time_publishes_nothing() -> None:
    store = FakeRuntimeStore()
    result = inspect_container(
        FakeContainerRuntime({}, {}),
        FakeInspectBaselines(),
        HealthPublisher(store, FakeHealthStream()),
        records=FakeRunningRecords(),
        game_id="g1",
        container_id="c1",
        now_ms=NOW,
    )
    assert (result["skipped"], store.events) == ("container missing", [])


def test_a_finding_about_a_container_the_game_no_longer_runs_is_not_published_for_it() -> None:
    runtime = FakeContainerRuntime({}, {"old": InspectObservation("old", "running", 0, "unhealthy", NOW - 2_000)})
    store = FakeRuntimeStore()
    result = inspect_container(
        runtime,
        FakeInspectBaselines(),
        HealthPublisher(store, FakeHealthStream()),
        records=FakeRunningRecords(RunningRecord("g1", "new", "")),  # a start replaced it after the sweep
        game_id="g1",
        container_id="old",
        now_ms=NOW,
    )
    assert (result["skipped"], store.events) == ("no longer the game's container", [])
