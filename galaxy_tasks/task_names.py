"""Stable, explicit task names (SPEC §6): operators and Flower know tasks by these."""

from __future__ import annotations

from enum import StrEnum

from galaxy_tasks.queues import Queue


class TaskName(StrEnum):
    GM_APPLY_HEALTH_EVENT = "gamemaster.apply_health_event"
    GM_APPLY_HEALTH_EVENTS_CHUNK = "gamemaster.apply_health_events_chunk"
    GM_RELAY_LOBBY_EVENTS = "gamemaster.relay_lobby_events"
    GM_REPAIR_HEALTH_EVENT_ORDER = "gamemaster.repair_health_event_order"
    GM_HEALTH_EVENTS_BRIDGE = "gamemaster.health_events_bridge"
    RTM_RELAY_HEALTH_EVENTS = "rtmanager.relay_health_events"
    RTM_INSPECT_SWEEP = "rtmanager.inspect_sweep"
    RTM_INSPECT_CONTAINER = "rtmanager.inspect_container"
    RTM_PROBE_SWEEP = "rtmanager.probe_sweep"
    RTM_RECONCILE = "rtmanager.reconcile"
    RTM_DOCKER_EVENTS_LISTENER = "rtmanager.docker_events_listener"
    RTM_PROBE_ENGINE = "rtmanager.probe_engine"
    RTM_START_GAME = "rtmanager.start_game"
    RTM_STOP_GAME = "rtmanager.stop_game"
    RTM_START_JOB_ENTRY = "rtmanager.start_job_entry"
    RTM_STOP_JOB_ENTRY = "rtmanager.stop_job_entry"
    RTM_START_JOBS_BRIDGE = "rtmanager.start_jobs_bridge"
    RTM_STOP_JOBS_BRIDGE = "rtmanager.stop_jobs_bridge"
    RTM_RELAY_JOB_RESULTS = "rtmanager.relay_job_results"
    RTM_RUN_JOB_ON_HOST = "rtmanager.run_job_on_host"
    RTM_RUN_GAME_JOBS = "rtmanager.run_game_jobs"
    RTM_REPAIR_JOBS = "rtmanager.repair_jobs"
    SUPERVISE_LONG_RUNNING = "galaxy.supervise_long_running"


ROUTES: dict[TaskName, Queue] = {
    TaskName.GM_APPLY_HEALTH_EVENT: Queue.GM_HEALTH_EVENTS,
    TaskName.GM_APPLY_HEALTH_EVENTS_CHUNK: Queue.GM_HEALTH_EVENTS,
    TaskName.GM_RELAY_LOBBY_EVENTS: Queue.PERIODIC,
    TaskName.GM_REPAIR_HEALTH_EVENT_ORDER: Queue.PERIODIC,
    TaskName.GM_HEALTH_EVENTS_BRIDGE: Queue.LONG_RUNNING,
    TaskName.RTM_RELAY_HEALTH_EVENTS: Queue.PERIODIC,
    # The sweeps list Docker: they run where the Docker host is, never on galaxy.periodic (whose
    # workers may have no Docker at all); beat sends them to rtmanager.docker[.<host>] (schedule.py).
    TaskName.RTM_INSPECT_SWEEP: Queue.RTM_DOCKER,
    TaskName.RTM_INSPECT_CONTAINER: Queue.RTM_DOCKER,
    TaskName.RTM_PROBE_SWEEP: Queue.RTM_DOCKER,
    TaskName.RTM_RECONCILE: Queue.RTM_DOCKER,
    TaskName.RTM_DOCKER_EVENTS_LISTENER: Queue.LONG_RUNNING,
    TaskName.RTM_PROBE_ENGINE: Queue.RTM_DOCKER,
    TaskName.RTM_START_GAME: Queue.RTM_JOBS,
    TaskName.RTM_STOP_GAME: Queue.RTM_JOBS,
    TaskName.RTM_START_JOB_ENTRY: Queue.RTM_JOBS,
    TaskName.RTM_STOP_JOB_ENTRY: Queue.RTM_JOBS,
    TaskName.RTM_START_JOBS_BRIDGE: Queue.LONG_RUNNING,
    TaskName.RTM_STOP_JOBS_BRIDGE: Queue.LONG_RUNNING,
    TaskName.RTM_RELAY_JOB_RESULTS: Queue.PERIODIC,
    TaskName.RTM_RUN_JOB_ON_HOST: Queue.RTM_JOBS,  # sent to rtmanager.jobs.<host>
    TaskName.RTM_RUN_GAME_JOBS: Queue.RTM_JOBS,  # sent to rtmanager.jobs.<host> with several Docker hosts
    # It asks Docker about expired claims: on each Docker host's queue, like the sweeps.
    TaskName.RTM_REPAIR_JOBS: Queue.RTM_DOCKER,
    TaskName.SUPERVISE_LONG_RUNNING: Queue.PERIODIC,
}
