"""The Runtime Manager's entry points: what each ``rtmanager.*`` health task calls, with its adapters bound.

The start/stop jobs have their own use case object
(:class:`~galaxy_tasks.service.job_dispatch.JobDispatch`, ``resources().job_dispatch``).
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING

from galaxy_tasks.adapters.celery_dispatch import CeleryFollowUps
from galaxy_tasks.adapters.docker.events import DockerEventSource
from galaxy_tasks.adapters.redis.lease import RedisLease
from galaxy_tasks.bootstrap.bridges import build_stream_bridge
from galaxy_tasks.celery_app import app
from galaxy_tasks.contract import (
    START_JOBS_BRIDGE_KEYS,
    START_JOBS_STREAM,
    STOP_JOBS_BRIDGE_KEYS,
    docker_events_lease_key,
)
from galaxy_tasks.domain.rtmanager.jobs import START_JOB_FIELDS, STOP_JOB_FIELDS, JobKind
from galaxy_tasks.domain.rtmanager.probe import ProbeThresholds
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.rtmanager import FollowUp, FollowUpTask
from galaxy_tasks.schedule import expiry_for
from galaxy_tasks.service.bridge import StreamBridge
from galaxy_tasks.service.docker_events import DockerEventsListener, ListenerActions
from galaxy_tasks.service.health_publisher import HealthPublisher
from galaxy_tasks.service.inspect_sweep import SweepPlan, inspect_container, run_inspect_sweep
from galaxy_tasks.service.probe_sweep import ProbePlan, probe_engine, run_probe_sweep
from galaxy_tasks.service.reconciler import Reconciliation, reconcile
from galaxy_tasks.task_names import TaskName

if TYPE_CHECKING:
    from galaxy_tasks.bootstrap.root import Resources

log = get_logger(__name__)

EVENT_KEY_MEMORY_MS = 86_400_000
"""How long the idempotency keys of Docker events are kept (far beyond Docker's own event buffer)."""


def _now_ms() -> int:
    return int(time.time() * 1000)


class RuntimeManagerEntryPoints:
    """Built once per process by :class:`~galaxy_tasks.bootstrap.root.Resources` (``resources().rtmanager``)."""

    def __init__(self, res: Resources) -> None:
        self._res = res

    @cached_property
    def publisher(self) -> HealthPublisher:
        return HealthPublisher(self._res.health_event_store, self._res.health_events_outbox)

    @cached_property
    def follow_ups(self) -> CeleryFollowUps:
        return CeleryFollowUps(app, self._res.docker_queue)

    def relay_health_events(self) -> int:
        return self._res.relay(self._res.health_events_outbox)

    def inspect_sweep(self) -> SweepPlan:
        res = self._res
        return run_inspect_sweep(
            res.runtime_records,
            res.docker_runtime,
            res.inspect_baselines,
            self.follow_ups,
            now_ms=_now_ms(),
            expires_seconds=expiry_for(res.settings.inspect_interval_seconds),
        )

    def inspect_container(self, game_id: str, container_id: str, down_seq: int) -> dict[str, object]:
        res = self._res
        return inspect_container(
            res.docker_runtime,
            res.inspect_baselines,
            self.publisher,
            records=res.runtime_records,
            game_id=game_id,
            container_id=container_id,
            now_ms=_now_ms(),
            down_seq=down_seq,
            success_threshold=res.settings.probe_success_threshold,
        )

    def probe_sweep(self) -> ProbePlan:
        res = self._res
        s = res.settings
        return run_probe_sweep(
            res.runtime_records,
            res.docker_runtime,
            res.probe_states,
            self.follow_ups,
            grace_seconds=s.probe_startup_grace_seconds,
            spread_seconds=s.probe_interval_seconds / 2,
            expires_seconds=expiry_for(s.probe_interval_seconds),
        )

    def probe_engine(self, game_id: str, container_id: str, endpoint: str, down_seq: int) -> dict[str, object]:
        res = self._res
        s = res.settings
        return probe_engine(
            res.prober,
            res.probe_states,
            self.publisher,
            down_seq=down_seq,
            game_id=game_id,
            container_id=container_id,
            endpoint=endpoint,
            thresholds=ProbeThresholds(s.probe_failure_threshold, s.probe_success_threshold),
            now_ms=_now_ms(),
        )

    def reconcile(self) -> Reconciliation:
        res = self._res
        res.health_event_store.prune_keys(_now_ms() - EVENT_KEY_MEMORY_MS)
        return reconcile(
            res.runtime_records,
            res.runtime_records,
            res.docker_runtime,
            res.orphan_report,
            self.publisher,
            now_ms=_now_ms(),
        )

    def docker_events_listener(self) -> DockerEventsListener:
        res = self._res
        s = res.settings
        reconcile_expires = expiry_for(s.reconcile_interval_seconds)

        def inspect_now(game_id: str, container_id: str) -> None:
            self._send_or_log(FollowUp(FollowUpTask.INSPECT, (game_id, container_id)))

        def reconcile_now() -> None:
            self._send_or_log(FollowUp(FollowUpTask.RECONCILE, expires_seconds=reconcile_expires))

        return DockerEventsListener(
            source=DockerEventSource(res.docker_runtime),
            runtime=res.docker_runtime,
            state=res.docker_events_state,
            lease=RedisLease(res.redis, docker_events_lease_key(s.docker_host_name), s.lease_ttl_seconds, s.redis_url),
            actions=ListenerActions(
                self.publisher, res.runtime_records, res.inspect_baselines, inspect_now, reconcile_now
            ),
        )

    def _send_or_log(self, follow_up: FollowUp) -> None:
        """A follow-up the listener asks for; with the broker away only logged: beat sends the same work
        periodically, and the listener must not stop over it."""
        try:
            self.follow_ups.send(follow_up)
        except Exception as exc:  # noqa: BLE001 - whatever an unreachable broker raises
            log.warning("follow_up_task_not_sent", follow_up=follow_up.task.value, error=str(exc))

    def job_bridge(self, stream: str) -> StreamBridge:
        """A job stream's bridge: jobs are ordered by their games' queues, not by the bridge (no partitions,
        no chunks)."""
        start = stream == START_JOBS_STREAM
        kind = JobKind.START if start else JobKind.STOP
        return build_stream_bridge(
            self._res,
            stream=stream,
            keys=START_JOBS_BRIDGE_KEYS if start else STOP_JOBS_BRIDGE_KEYS,
            partition_of=lambda fields: None,
            entry_task=TaskName.RTM_START_JOB_ENTRY if start else TaskName.RTM_STOP_JOB_ENTRY,
            known_fields=START_JOB_FIELDS if start else STOP_JOB_FIELDS,
            dispatcher=self._res.job_dispatch.bridge_dispatcher(kind, stream),
        )
