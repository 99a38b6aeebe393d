"""The probe sweep's plan and one probe, on in-memory fakes."""

from __future__ import annotations

from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.probe import ProbeState, ProbeThresholds
from galaxy_tasks.ports.rtmanager import ListedContainer, RunningRecord
from galaxy_tasks.service.health_publisher import HealthPublisher
from galaxy_tasks.service.probe_sweep import plan_probe_sweep, probe_engine
from galaxy_tasks.testing.scripted import FakeContainerRuntime, FakeProber, FakeRunningRecords
from galaxy_tasks.testing.store import FakeHealthStream, FakeProbeStates, FakeRuntimeStore


def test_only_running_engines_past_their_grace_are_probed_and_stale_streaks_pruned() -> None:
    records = FakeRunningRecords(
        RunningRecord("old", "c1", "http://127.0.0.1:1"),
        RunningRecord("young", "c2", "http://127.0.0.1:2"),
        RunningRecord("exited", "c3", "http://127.0.0.1:3"),
        RunningRecord("gone", "c4", "http://127.0.0.1:4"),
    )
    runtime = FakeContainerRuntime(
        {
            "c1": ListedContainer("c1", "old", "running", "Up 3 minutes"),
            "c2": ListedContainer("c2", "young", "running", "Up 2 seconds"),
            "c3": ListedContainer("c3", "exited", "exited", "Exited (3) 1 second ago"),
        },
        {},
    )
    states = FakeProbeStates(stopped_game=ProbeState("c9"))
    plan = plan_probe_sweep(records, runtime, states, grace_seconds=10)
    assert plan.to_probe == [("old", "c1", "http://127.0.0.1:1", 0)]
    assert plan.in_grace == ["young"]
    assert plan.not_running == ["exited", "gone"]
    assert (plan.pruned, runtime.list_calls) == (1, 1)


def test_a_probe_publishes_only_at_the_threshold() -> None:
    states = FakeProbeStates()
    store = FakeRuntimeStore()
    prober = FakeProber((False, "refused"), (False, "refused"))
    for _ in range(2):
        probe_engine(
            prober,
            states,
            HealthPublisher(store, FakeHealthStream()),
            game_id="g1",
            container_id="c1",
            endpoint="http://127.0.0.1:1",
            thresholds=ProbeThresholds(failure=2),
            now_ms=5,
        )
    assert store.events == [HealthEvent.probe_failed("g1", "c1", 5, consecutive_failures=2, last_error="refused")]
    assert states.get("g1") == ProbeState("c1", 2, 0, failing=True, last_failure_streak=2)
