"""``supervise``: launch each long-running singleton nobody holds, once per launch window."""

from __future__ import annotations

from galaxy_tasks.contract import launch_marker_key
from galaxy_tasks.long_running import REGISTRY, LongRunning, registry
from galaxy_tasks.service.supervisor import supervise
from galaxy_tasks.testing.bridge import FakeLeaseView
from galaxy_tasks.testing.clock import FakeClock

BRIDGE = LongRunning("gm.bridge", "gamemaster.bridge_task", "gm:bridge:lease")
LISTENER = LongRunning("rtm.listener", "rtmanager.listener_task", "rtm:listener:lease")


class Launches:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.queues: list[str] = []

    def __call__(self, task_name: str, expires_seconds: float, queue: str) -> None:
        self.calls.append((task_name, expires_seconds))
        self.queues.append(queue)


def test_singleton_held_by_someone_is_left_alone() -> None:
    view = FakeLeaseView({"gm:bridge:lease": "host-a:12:beef"})
    launch = Launches()
    states = supervise([BRIDGE], view, launch, launch_ttl_seconds=5)
    assert states == {"gm.bridge": "held by host-a:12:beef"}
    assert launch.calls == []
    assert view.claims == []


def test_singleton_nobody_holds_is_launched_with_the_launch_ttl() -> None:
    view = FakeLeaseView()
    launch = Launches()
    states = supervise([BRIDGE], view, launch, launch_ttl_seconds=5)
    assert states == {"gm.bridge": "launched"}
    assert launch.calls == [("gamemaster.bridge_task", 5)]
    assert view.claims == [(launch_marker_key("gm.bridge"), 5)]


def test_launch_marker_key_names_the_singleton() -> None:
    assert launch_marker_key("gm.bridge") == "galaxy:supervisor:launching:gm.bridge"


def test_a_launch_on_its_way_is_not_queued_again() -> None:
    clock = FakeClock()
    view = FakeLeaseView(clock=clock)
    launch = Launches()
    supervise([BRIDGE], view, launch, launch_ttl_seconds=5)
    clock.advance(2)
    states = supervise([BRIDGE], view, launch, launch_ttl_seconds=5)
    assert states == {"gm.bridge": "launch pending"}
    assert len(launch.calls) == 1


def test_a_launch_that_never_took_the_lease_is_retried_after_the_marker_expires() -> None:
    clock = FakeClock()
    view = FakeLeaseView(clock=clock)
    launch = Launches()
    supervise([BRIDGE], view, launch, launch_ttl_seconds=5)
    clock.advance(5.5)
    states = supervise([BRIDGE], view, launch, launch_ttl_seconds=5)
    assert states == {"gm.bridge": "launched"}
    assert len(launch.calls) == 2


def test_each_singleton_is_supervised_on_its_own() -> None:
    view = FakeLeaseView({"rtm:listener:lease": "host-b:7:cafe"})
    launch = Launches()
    states = supervise([BRIDGE, LISTENER], view, launch, launch_ttl_seconds=3)
    assert states == {"gm.bridge": "launched", "rtm.listener": "held by host-b:7:cafe"}
    assert launch.calls == [("gamemaster.bridge_task", 3)]


def test_the_registry_launches_the_health_bridge_the_docker_events_listener_and_both_job_bridges() -> None:
    launch = Launches()
    states = supervise(REGISTRY, FakeLeaseView(), launch, launch_ttl_seconds=4)
    names = [
        "gamemaster.health_events_bridge",
        "rtmanager.docker_events_listener",
        "rtmanager.start_jobs_bridge",
        "rtmanager.stop_jobs_bridge",
    ]
    assert states == dict.fromkeys(names, "launched")
    assert launch.calls == [(name, 4) for name in names]


def test_with_several_docker_hosts_each_host_gets_its_own_listener_launched_on_its_own_queue() -> None:
    launch = Launches()
    states = supervise(registry(["dh1", "dh2"]), FakeLeaseView(), launch, launch_ttl_seconds=4)
    assert "rtmanager.docker_events_listener@dh1" in states
    assert "rtmanager.docker_events_listener@dh2" in states
    listener_queues = [q for (task, _), q in zip(launch.calls, launch.queues, strict=True) if "listener" in task]
    assert listener_queues == ["galaxy.long_running.dh1", "galaxy.long_running.dh2"]
    assert launch.queues.count("galaxy.long_running") == 3  # the bridges: once per cluster, anywhere
