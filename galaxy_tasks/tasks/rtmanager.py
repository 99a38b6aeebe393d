"""Runtime Manager tasks: the health-event outbox relay, the Docker inspect sweep and the probes."""

from __future__ import annotations

import random
from typing import Any

from celery import Task

from galaxy_tasks.adapters.docker.events import DockerEventSource
from galaxy_tasks.adapters.redis.lease import RedisLease
from galaxy_tasks.bootstrap import resources
from galaxy_tasks.celery_app import app
from galaxy_tasks.domain.rtmanager.probe import ProbeThresholds
from galaxy_tasks.logs import get_logger
from galaxy_tasks.long_running import docker_events_lease_key
from galaxy_tasks.schedule import expiry_for
from galaxy_tasks.service.docker_events import DockerEventsListener, ListenerActions
from galaxy_tasks.service.health_publisher import HEALTH_EVENT_OUTBOX_LABEL, HealthPublisher
from galaxy_tasks.service.inspect_sweep import inspect_container as inspect_one_container
from galaxy_tasks.service.inspect_sweep import plan_inspect_sweep
from galaxy_tasks.service.probe_sweep import plan_probe_sweep
from galaxy_tasks.service.probe_sweep import probe_engine as probe_one_engine
from galaxy_tasks.service.reconciler import reconcile as reconcile_with_docker
from galaxy_tasks.task_names import TaskName
from galaxy_tasks.tasks._base import galaxy_task, now_ms, relay_outbox
from galaxy_tasks.tasks._long_running import LONG_RUNNING_OPTIONS, stop_condition


@galaxy_task(TaskName.RTM_RELAY_HEALTH_EVENTS, acks_late=True)
def relay_health_events(self: Task) -> dict[str, Any]:
    """Append committed health events still in the outbox to ``runtime:health_events`` (idempotent)."""
    return relay_outbox(resources().health_events_outbox, HEALTH_EVENT_OUTBOX_LABEL)


log = get_logger(__name__)

NO_RETRY: tuple[type[BaseException], ...] = ()
"""Sweeps and their per-container tasks are not retried: the next beat tick does the work again."""

EVENT_KEY_MEMORY_MS = 86_400_000
"""How long the idempotency keys of Docker events are kept (far beyond Docker's own event buffer)."""


def _publisher() -> HealthPublisher:
    res = resources()
    return HealthPublisher(res.health_event_store, res.health_events_outbox)


@galaxy_task(TaskName.RTM_INSPECT_SWEEP, acks_late=True, autoretry_for=NO_RETRY)
def inspect_sweep(self: Task) -> dict[str, Any]:
    """List the managed containers once and send an inspect task for each one the list cannot vouch for."""
    res = resources()
    plan = plan_inspect_sweep(res.runtime_records, res.docker_runtime, res.inspect_baselines, now_ms=now_ms())
    expires = expiry_for(res.settings.inspect_interval_seconds)
    for game_id, container_id, down_seq in plan.to_inspect:
        app.send_task(
            TaskName.RTM_INSPECT_CONTAINER.value,
            args=[game_id, container_id],
            kwargs={"down_seq": down_seq} if down_seq else {},
            expires=expires,
            queue=res.docker_queue,
        )
    return plan.as_dict()


@galaxy_task(TaskName.RTM_INSPECT_CONTAINER, acks_late=True, autoretry_for=NO_RETRY)
def inspect_container(self: Task, game_id: str, container_id: str, down_seq: int = 0) -> dict[str, Any]:
    """Inspect one game's container (seed ``003``): a death for good, ``inspect_unhealthy`` once per change,
    and (``down_seq``: the game's down period when the sweep asked) evidence of its recovery."""
    res = resources()
    return inspect_one_container(
        res.docker_runtime,
        res.inspect_baselines,
        _publisher(),
        records=res.runtime_records,
        game_id=game_id,
        container_id=container_id,
        now_ms=now_ms(),
        down_seq=down_seq,
        success_threshold=res.settings.probe_success_threshold,
    )


@galaxy_task(TaskName.RTM_PROBE_SWEEP, acks_late=True, autoretry_for=NO_RETRY)
def probe_sweep(self: Task) -> dict[str, Any]:
    """Send a probe task for every running engine past its start-up grace, spread over the interval."""
    res = resources()
    s = res.settings
    plan = plan_probe_sweep(
        res.runtime_records, res.docker_runtime, res.probe_states, grace_seconds=s.probe_startup_grace_seconds
    )
    spread = s.probe_interval_seconds / 2
    for game_id, container_id, endpoint, down_seq in plan.to_probe:
        app.send_task(
            TaskName.RTM_PROBE_ENGINE.value,
            args=[game_id, container_id, endpoint],
            kwargs={"down_seq": down_seq} if down_seq else {},
            countdown=random.uniform(0, spread),
            expires=expiry_for(s.probe_interval_seconds),
            queue=res.docker_queue,
        )
    return plan.as_dict()


@galaxy_task(TaskName.RTM_PROBE_ENGINE, acks_late=True, autoretry_for=NO_RETRY)
def probe_engine(self: Task, game_id: str, container_id: str, endpoint: str, down_seq: int = 0) -> dict[str, Any]:
    """Probe one engine's health endpoint: ``probe_failed`` at the threshold; while the game is down
    (``down_seq``), evidence of its recovery, which ends in ``probe_recovered``."""
    res = resources()
    s = res.settings
    return probe_one_engine(
        res.prober,
        res.probe_states,
        _publisher(),
        down_seq=down_seq,
        game_id=game_id,
        container_id=container_id,
        endpoint=endpoint,
        thresholds=ProbeThresholds(s.probe_failure_threshold, s.probe_success_threshold),
        now_ms=now_ms(),
    )


@galaxy_task(TaskName.RTM_RECONCILE, acks_late=True, autoretry_for=NO_RETRY)
def reconcile(self: Task) -> dict[str, Any]:
    """Relist: report running records whose container is gone or dead for good (once each), and orphans."""
    res = resources()
    res.health_event_store.prune_keys(now_ms() - EVENT_KEY_MEMORY_MS)
    return reconcile_with_docker(
        res.runtime_records,
        res.runtime_records,
        res.docker_runtime,
        res.orphan_report,
        _publisher(),
        now_ms=now_ms(),
    ).as_dict()


@galaxy_task(TaskName.RTM_DOCKER_EVENTS_LISTENER, **LONG_RUNNING_OPTIONS)
def docker_events_listener(self: Task, max_seconds: float | None = None) -> dict[str, Any]:
    """Follow the managed containers' Docker events until shutdown or lease loss (long-running).

    Belongs on the long-running queue; acked on receipt (the lease, not redelivery,
    keeps it alive); the supervisor starts one whenever nobody holds the lease.
    """
    return build_docker_events_listener().run(stop_condition(max_seconds)).as_dict()


def _send_or_log(name: TaskName, **options: Any) -> object:
    """Send a follow-up task; with the broker down, log it: beat sends the same work periodically."""
    try:
        return app.send_task(name.value, **options)
    except Exception as exc:  # noqa: BLE001 - kombu/redis errors of an unreachable broker
        log.warning("follow_up_task_not_sent", task=name.value, error=str(exc))
        return None


def build_docker_events_listener() -> DockerEventsListener:
    res = resources()
    s = res.settings

    def inspect_now(game_id: str, container_id: str) -> object:
        return _send_or_log(TaskName.RTM_INSPECT_CONTAINER, args=[game_id, container_id], queue=res.docker_queue)

    def reconcile_now() -> object:
        # The reconciler lists Docker: it runs on this host's Docker-bound queue, like the sweeps.
        return _send_or_log(
            TaskName.RTM_RECONCILE, expires=expiry_for(s.reconcile_interval_seconds), queue=res.docker_queue
        )

    return DockerEventsListener(
        source=DockerEventSource(res.docker_runtime),
        runtime=res.docker_runtime,
        state=res.docker_events_state,
        lease=RedisLease(res.redis, docker_events_lease_key(s.docker_host_name), s.lease_ttl_seconds, s.redis_url),
        actions=ListenerActions(_publisher(), res.runtime_records, res.inspect_baselines, inspect_now, reconcile_now),
    )


__all__ = [
    "docker_events_listener",
    "inspect_container",
    "inspect_sweep",
    "probe_engine",
    "probe_sweep",
    "reconcile",
    "relay_health_events",
]
