"""What the inspect and probe sweeps ask the Docker host's workers for: one request per planned container,
with the sweep's expiry (a late copy is worthless after a few intervals) and, for probes, a delay spread
over the interval."""

from __future__ import annotations

from galaxy_tasks.domain.rtmanager.inspect import InspectBaseline
from galaxy_tasks.ports.rtmanager import FollowUp, FollowUpTask, ListedContainer, RunningRecord
from galaxy_tasks.service.inspect_sweep import run_inspect_sweep
from galaxy_tasks.service.probe_sweep import run_probe_sweep
from galaxy_tasks.testing.follow_ups import FakeFollowUps
from galaxy_tasks.testing.scripted import FakeContainerRuntime, FakeRunningRecords
from galaxy_tasks.testing.store import FakeInspectBaselines, FakeProbeStates

NOW = 1_800_000_000_000


def test_the_inspect_sweep_asks_for_one_inspect_per_container_the_list_cannot_vouch_for_with_its_down_period() -> None:
    records = FakeRunningRecords(RunningRecord("g1", "c1", ""), RunningRecord("g2", "c2", "", down_seq=4))
    runtime = FakeContainerRuntime(
        {
            "c1": ListedContainer("c1", "g1", "running", "Up 5 minutes"),
            "c2": ListedContainer("c2", "g2", "running", "Up 5 minutes (unhealthy)"),
        },
        {},
    )
    baselines = FakeInspectBaselines(g1=InspectBaseline("c1", 0, NOW - 301_000))
    follow_ups = FakeFollowUps()

    plan = run_inspect_sweep(records, runtime, baselines, follow_ups, now_ms=NOW, expires_seconds=30.0)

    assert plan.vouched == ["g1"]
    assert follow_ups.sent == [FollowUp(FollowUpTask.INSPECT, ("g2", "c2"), down_seq=4, expires_seconds=30.0)]


def test_the_probe_sweep_asks_for_one_probe_per_engine_past_its_grace_each_delayed_within_the_spread() -> None:
    records = FakeRunningRecords(
        RunningRecord("old", "c1", "http://127.0.0.1:1"),
        RunningRecord("young", "c2", "http://127.0.0.1:2"),
        RunningRecord("down", "c3", "http://127.0.0.1:3", down_seq=2),
    )
    runtime = FakeContainerRuntime(
        {
            "c1": ListedContainer("c1", "old", "running", "Up 3 minutes"),
            "c2": ListedContainer("c2", "young", "running", "Up 2 seconds"),
            "c3": ListedContainer("c3", "down", "running", "Up 3 minutes"),
        },
        {},
    )
    follow_ups = FakeFollowUps()
    spreads: list[tuple[float, float]] = []

    def delay(low: float, high: float) -> float:
        spreads.append((low, high))
        return high / 2

    run_probe_sweep(
        records,
        runtime,
        FakeProbeStates(),
        follow_ups,
        grace_seconds=10,
        spread_seconds=5.0,
        expires_seconds=50.0,
        delay=delay,
    )

    assert follow_ups.sent == [
        FollowUp(FollowUpTask.PROBE, ("old", "c1", "http://127.0.0.1:1"), 0, 2.5, 50.0),
        FollowUp(FollowUpTask.PROBE, ("down", "c3", "http://127.0.0.1:3"), 2, 2.5, 50.0),
    ]
    assert spreads == [(0, 5.0), (0, 5.0)]
