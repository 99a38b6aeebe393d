"""Every documented process layout runs the Docker-bound tasks where the Docker host is (issue 10, item 6).

The routing lives in the code (``ROUTES``, the beat schedule, the supervisor's registry) and the
process layout in ``deploy/``; they drifted once: with one Docker host the inspect sweep, the probe
sweep and the reconciler went to ``galaxy.periodic``, which the compose file's events worker
consumes — without a Docker socket — so the sweeps never reached Docker. Here the layouts are read
from the files themselves, never restated:

* **compose**: every service of ``deploy/docker-compose.yml`` that runs ``celery … worker`` (the
  image's entrypoint plus the service's command), its ``-Q`` list, and whether it sees the Docker
  host: ``DOCKER_HOST`` (or the SDK's default socket) is a unix socket it mounts, with the socket's
  group added, or a remote engine;
* **systemd**: the units ``galaxy-tasks.target`` wants, template instances included, their
  ``ExecStart`` expanded with the environment files ``deploy/README.md`` tells operators to write
  (``/etc/galaxy-tasks/galaxy.env`` is ``galaxy.env.example``). A unit may run on any host, so it
  sees the Docker host only when its environment names one (``DOCKER_HOST``) and, for a socket, it
  is in the ``docker`` group;
* **several Docker hosts**: the command lines of ``deploy/README.md``'s "Several Docker hosts"
  (``GALAXY_DOCKER_HOSTS``, and per worker ``GALAXY_DOCKER_HOST_NAME`` / ``DOCKER_HOST``);
* **galaxy-tasks run**: its own process list (``child_commands``); every child runs on this one
  machine, with the Docker Engine the run made sure of in its environment.

Then, for each layout: every queue beat, the supervisor or a route sends to has a consumer; each
Docker-bound task — the sweeps as beat schedules them, and every Docker-bound route on each host's
queue — is consumed only by workers that see that task's Docker host.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from galaxy_tasks.cli import build_parser
from galaxy_tasks.cli.run import child_commands
from galaxy_tasks.config import Settings
from galaxy_tasks.long_running import registry
from galaxy_tasks.queues import HOST_BOUND, Queue, on_docker_host
from galaxy_tasks.schedule import beat_schedule
from galaxy_tasks.task_names import ROUTES, TaskName
from tests.support.deploy_layout import (
    DEPLOY,
    compose_processes,
    section,
    shell_blocks,
    split_env_prefix,
    systemd_processes,
    worker_queues,
)

pytestmark = pytest.mark.e2e

DOCKER_BOUND: tuple[TaskName, ...] = (
    TaskName.RTM_INSPECT_SWEEP,
    TaskName.RTM_PROBE_SWEEP,
    TaskName.RTM_RECONCILE,
    TaskName.RTM_INSPECT_CONTAINER,
    TaskName.RTM_PROBE_ENGINE,
    TaskName.RTM_DOCKER_EVENTS_LISTENER,
    TaskName.RTM_START_GAME,
    TaskName.RTM_STOP_GAME,
    TaskName.RTM_RUN_JOB_ON_HOST,
)
"""Tasks that talk to a Docker Engine wherever they run (on a host's own queue with several hosts)."""

DOCKER_BOUND_WITH_ONE_HOST: tuple[TaskName, ...] = (TaskName.RTM_START_JOB_ENTRY, TaskName.RTM_STOP_JOB_ENTRY)
"""The job-stream entries run the job with one Docker host; with several they only place it and hand it on."""


@dataclass(frozen=True)
class Worker:
    name: str
    queues: frozenset[str]
    docker_host: str | None
    """The Docker host it sees (``""``: the single one), ``None`` when it sees none."""


@dataclass(frozen=True)
class Layout:
    name: str
    settings: Settings
    workers: tuple[Worker, ...]

    @property
    def docker_hosts(self) -> list[str]:
        return self.settings.docker_host_names() or [""]

    def consumers(self, queue: str) -> list[Worker]:
        return [worker for worker in self.workers if queue in worker.queues]

    def describe(self, queue: str) -> str:
        consumers = self.consumers(queue)
        seen = ", ".join(f"{w.name} (Docker host {w.docker_host!r})" for w in consumers if w.docker_host is not None)
        blind = ", ".join(w.name for w in consumers if w.docker_host is None)
        return f"{self.name}: {queue} is consumed by [{seen}] seeing Docker and [{blind}] without Docker"


# --- compose and systemd: tests/support/deploy_layout.py reads them ----------------------------------


def compose_layout() -> Layout:
    workers = [
        Worker(
            process.name.replace("compose ", "compose service "),
            process.queues,
            process.environment.get("GALAXY_DOCKER_HOST_NAME", "") if process.sees_docker else None,
        )
        for process in compose_processes()
        if process.queues is not None
    ]
    return Layout("compose", Settings(), tuple(workers))


def systemd_layout() -> Layout:
    workers = [
        Worker(
            process.name,
            process.queues,
            process.environment.get("GALAXY_DOCKER_HOST_NAME", "") if process.sees_docker else None,
        )
        for process in systemd_processes()
        if process.queues is not None
    ]
    return Layout("systemd", Settings(), tuple(workers))


# --- several Docker hosts (deploy/README.md) ------------------------------------------------------------


def several_hosts_layout() -> Layout:
    blocks = shell_blocks(section((DEPLOY / "README.md").read_text(), "Several Docker hosts"))
    assert blocks, "deploy/README.md shows no commands for several Docker hosts"
    hosts = ""
    workers = []
    for line in blocks[0]:
        environment, argv = split_env_prefix(shlex.split(line, comments=True))
        if not argv:
            hosts = environment.get("GALAXY_DOCKER_HOSTS", hosts)
            continue
        queues = worker_queues(argv)
        if queues is None:
            continue
        host = environment.get("GALAXY_DOCKER_HOST_NAME", "") if "DOCKER_HOST" in environment else None
        workers.append(Worker(f"README worker {argv[argv.index('-n') + 1]}", queues, host))
    assert len(hosts.split(",")) > 1, "the several-hosts example names fewer than two hosts"
    return Layout("several Docker hosts", Settings(docker_hosts=hosts), tuple(workers))


# --- galaxy-tasks run ----------------------------------------------------------------------------------


def run_layout() -> Layout:
    args = build_parser().parse_args(["run", "--no-flower"])
    workers = [
        Worker(f"galaxy-tasks run {name}", queues, "")  # this machine, the run's DOCKER_HOST in its environment
        for name, argv in child_commands(args, Path(".run")).items()
        if (queues := worker_queues(argv)) is not None
    ]
    return Layout("galaxy-tasks run", Settings(), tuple(workers))


LAYOUTS: dict[str, Callable[[], Layout]] = {
    "compose": compose_layout,
    "systemd": systemd_layout,
    "several-docker-hosts": several_hosts_layout,
    "galaxy-tasks-run": run_layout,
}


@pytest.fixture(params=list(LAYOUTS), ids=list(LAYOUTS))
def layout(request: pytest.FixtureRequest) -> Layout:
    return LAYOUTS[request.param]()


# --- what the layouts must do ---------------------------------------------------------------------------


def scheduled_queue(entry: Mapping[str, Any]) -> str:
    """Where beat sends an entry: its own queue option, else the task's route."""
    queue = entry.get("options", {}).get("queue")
    return str(queue) if queue else ROUTES[TaskName(entry["task"])].value


def declared_queues(settings: Settings) -> set[str]:
    """The queues the application declares (``celeryconfig.task_queues``)."""
    hosts = settings.docker_host_names()
    return {queue.value for queue in Queue} | {on_docker_host(q, host) for host in hosts for q in HOST_BOUND}


def test_each_layout_read_from_deploy_has_workers_on_queues_the_application_declares(layout: Layout) -> None:
    assert layout.workers, f"{layout.name}: no worker found"
    for worker in layout.workers:
        unknown = worker.queues - declared_queues(layout.settings)
        assert not unknown, f"{layout.name}: {worker.name} consumes undeclared queues {sorted(unknown)}"


def test_every_queue_that_beat_the_supervisor_or_a_route_sends_to_has_a_consumer(layout: Layout) -> None:
    several = bool(layout.settings.docker_host_names())
    sent = {scheduled_queue(entry) for entry in beat_schedule(layout.settings).values()}
    sent |= {singleton.queue for singleton in registry(layout.settings.docker_host_names())}
    # With several hosts nothing goes to the plain rtmanager.docker: each host's Docker work has its queue.
    sent |= {queue.value for queue in ROUTES.values() if not (several and queue is Queue.RTM_DOCKER)}
    orphaned = sorted(queue for queue in sent if not layout.consumers(queue))
    assert not orphaned, f"{layout.name}: nobody consumes {orphaned}"


def test_every_sweep_beat_schedules_runs_only_on_workers_that_see_its_docker_host(layout: Layout) -> None:
    served: dict[TaskName, set[str]] = {}
    for name, entry in beat_schedule(layout.settings).items():
        task = TaskName(entry["task"])
        if task not in DOCKER_BOUND:
            continue
        queue = scheduled_queue(entry)
        hosts = {worker.docker_host for worker in layout.consumers(queue)}
        assert len(hosts) == 1, f"beat entry {name} ({task.value}) -> {layout.describe(queue)}"
        host = hosts.pop()
        assert host is not None, f"beat entry {name} ({task.value}) -> {layout.describe(queue)}"
        served.setdefault(task, set()).add(host)
    for task in (TaskName.RTM_INSPECT_SWEEP, TaskName.RTM_PROBE_SWEEP, TaskName.RTM_RECONCILE):
        assert served.get(task) == set(layout.docker_hosts), (
            f"{layout.name}: {task.value} reaches Docker hosts {sorted(served.get(task, set()))}, "
            f"not every one of {layout.docker_hosts}"
        )


def test_every_docker_bound_task_is_consumed_only_by_workers_that_see_its_docker_host(layout: Layout) -> None:
    bound = DOCKER_BOUND if layout.settings.docker_host_names() else DOCKER_BOUND + DOCKER_BOUND_WITH_ONE_HOST
    for host in layout.docker_hosts:
        for task in bound:
            route = ROUTES[task]
            assert route in HOST_BOUND, f"{task.value} is routed to {route.value}, which no Docker host owns"
            queue = on_docker_host(route, host)
            consumers = layout.consumers(queue)
            assert consumers, f"{layout.name}: nobody consumes {queue} ({task.value})"
            assert all(worker.docker_host == host for worker in consumers), (
                f"{task.value} on Docker host {host!r} -> {layout.describe(queue)}"
            )


def test_the_docker_events_listener_of_each_host_runs_only_where_it_sees_that_host(layout: Layout) -> None:
    listeners = [
        singleton
        for singleton in registry(layout.settings.docker_host_names())
        if singleton.task_name == TaskName.RTM_DOCKER_EVENTS_LISTENER
    ]
    seen: set[str | None] = set()
    for listener in listeners:
        hosts = {worker.docker_host for worker in layout.consumers(listener.queue)}
        assert len(hosts) == 1, f"{listener.name} -> {layout.describe(listener.queue)}"
        assert None not in hosts, f"{listener.name} -> {layout.describe(listener.queue)}"
        seen |= hosts
    assert seen == set(layout.docker_hosts)
