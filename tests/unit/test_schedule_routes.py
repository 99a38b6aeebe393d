"""Where beat and the routes send each periodic task: Docker work to its Docker host, the rest to ``galaxy.periodic``.

The sweeps list a Docker Engine, so they must reach a worker that sees it; ``galaxy.periodic`` is
served by workers that may have no Docker at all (issue 10, item 6). The deployment side of the
same rule is ``tests/e2e/test_deploy_layout_reaches_docker.py``.
"""

from __future__ import annotations

import pytest

from galaxy_tasks.config import Settings
from galaxy_tasks.schedule import beat_schedule
from galaxy_tasks.task_names import ROUTES, TaskName

SWEEPS = (TaskName.RTM_INSPECT_SWEEP, TaskName.RTM_PROBE_SWEEP, TaskName.RTM_RECONCILE)
CONTROL = (
    TaskName.SUPERVISE_LONG_RUNNING,
    TaskName.GM_RELAY_LOBBY_EVENTS,
    TaskName.RTM_RELAY_HEALTH_EVENTS,
    TaskName.RTM_RELAY_JOB_RESULTS,
    TaskName.GM_REPAIR_HEALTH_EVENT_ORDER,
)


@pytest.mark.parametrize("task", SWEEPS, ids=[task.value for task in SWEEPS])
def test_the_sweeps_are_routed_to_the_docker_bound_queue_not_to_galaxy_periodic(task: TaskName) -> None:
    assert ROUTES[task].value == "rtmanager.docker"


def test_with_one_docker_host_beat_sends_each_sweep_to_rtmanager_docker() -> None:
    schedule = beat_schedule(Settings())
    sweeps = {name: entry for name, entry in schedule.items() if TaskName(entry["task"]) in SWEEPS}
    assert {name: entry["options"]["queue"] for name, entry in sweeps.items()} == {
        "inspect-sweep": "rtmanager.docker",
        "probe-sweep": "rtmanager.docker",
        "reconcile": "rtmanager.docker",
    }


def test_with_several_docker_hosts_beat_sends_each_hosts_sweeps_to_that_hosts_docker_queue() -> None:
    schedule = beat_schedule(Settings(docker_hosts="dh1,dh2"))
    sweeps = {name: entry for name, entry in schedule.items() if TaskName(entry["task"]) in SWEEPS}
    assert {name: entry["options"]["queue"] for name, entry in sweeps.items()} == {
        f"{sweep}@{host}": f"rtmanager.docker.{host}"
        for host in ("dh1", "dh2")
        for sweep in ("inspect-sweep", "probe-sweep", "reconcile")
    }


@pytest.mark.parametrize("docker_hosts", ["", "dh1,dh2"], ids=["one-docker-host", "several-docker-hosts"])
def test_the_control_tasks_stay_on_galaxy_periodic_once_each(docker_hosts: str) -> None:
    schedule = beat_schedule(Settings(docker_hosts=docker_hosts))
    control = [entry for entry in schedule.values() if TaskName(entry["task"]) in CONTROL]
    assert sorted(entry["task"] for entry in control) == sorted(task.value for task in CONTROL)
    for entry in control:
        assert "queue" not in entry["options"]
        assert ROUTES[TaskName(entry["task"])].value == "galaxy.periodic"


@pytest.mark.parametrize("hosts", ["", "dh1,dh2"])
def test_every_periodic_message_outlives_a_few_seconds_of_clock_skew_or_queueing(hosts: str) -> None:
    """Expiry is judged against the sender's clock: at least 10 s and several intervals, never one interval."""
    for name, entry in beat_schedule(Settings(docker_hosts=hosts)).items():
        expires = entry["options"]["expires"]
        assert expires >= 10, name
        assert expires >= 3 * entry["schedule"], name


def test_every_task_function_is_named_after_its_task_name_and_every_name_has_a_task() -> None:
    import galaxy_tasks  # noqa: F401 - registers every task on import
    from galaxy_tasks.celery_app import app

    registered = {name: task.run.__name__ for name, task in app.tasks.items() if name in set(TaskName)}
    assert sorted(registered) == sorted(name.value for name in TaskName)
    assert {name: fn for name, fn in registered.items() if fn != name.split(".", 1)[1]} == {}
