"""The process's clients and adapters, and the use-case entry points built on them.

Clients are created lazily and per process id — Celery's prefork children
must never reuse sockets opened by the parent (a shared PostgreSQL connection
across a fork corrupts both).  ``worker_process_init`` also drops them
explicitly in every new child.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import redis
from redis import Redis as RedisClient
from sqlalchemy import Engine

from galaxy_tasks.adapters.celery_dispatch import CeleryTurnForwarder
from galaxy_tasks.adapters.docker.engines import DockerEngineContainers
from galaxy_tasks.adapters.docker.runtime import DockerRuntime
from galaxy_tasks.adapters.http_probe import HttpProber
from galaxy_tasks.adapters.postgres.engine import SessionLimits, build_autocommit_engine, build_engine
from galaxy_tasks.adapters.postgres.health_consumer_uow import SqlAlchemyHealthConsumerUnitOfWork
from galaxy_tasks.adapters.postgres.health_events import PostgresHealthEventStore
from galaxy_tasks.adapters.postgres.jobs import PostgresJobQueue
from galaxy_tasks.adapters.postgres.outboxes import JOB_RESULT_OUTBOX_SPEC, LOBBY_OUTBOX_SPEC, health_events_outbox
from galaxy_tasks.adapters.postgres.rtm_records import PostgresPlacement, PostgresRuntimeRecords
from galaxy_tasks.adapters.postgres.stream_outbox import OutboxSpec, PostgresStreamOutbox
from galaxy_tasks.adapters.redis.client import build_redis
from galaxy_tasks.adapters.redis.clock import RedisStreamClock
from galaxy_tasks.adapters.redis.docker_events_state import RedisDockerEventsState
from galaxy_tasks.adapters.redis.inspect_baselines import RedisInspectBaselines
from galaxy_tasks.adapters.redis.job_streams import RedisJobStreams
from galaxy_tasks.adapters.redis.lease import RedisLeaseView
from galaxy_tasks.adapters.redis.orphans import RedisOrphanReport
from galaxy_tasks.adapters.redis.probe_states import RedisProbeStates
from galaxy_tasks.bootstrap.gamemaster import GameMasterEntryPoints
from galaxy_tasks.bootstrap.rtmanager import RuntimeManagerEntryPoints
from galaxy_tasks.celery_app import app
from galaxy_tasks.config import Settings, get_settings
from galaxy_tasks.contract import (
    ORPHANS_KEY,
    START_JOBS_BRIDGE_KEYS,
    START_JOBS_STREAM,
    STOP_JOBS_BRIDGE_KEYS,
    STOP_JOBS_STREAM,
    on_host,
)
from galaxy_tasks.long_running import registry
from galaxy_tasks.ports.outbox import OutboxEntry, StreamOutbox
from galaxy_tasks.queues import Queue, on_docker_host
from galaxy_tasks.service.freshness import observe_lobby_appends
from galaxy_tasks.service.job_dispatch import JobDispatch
from galaxy_tasks.service.jobs import EngineSettings, JobContext
from galaxy_tasks.service.outbox import relay, report_new_generation
from galaxy_tasks.service.supervisor import supervise


def hours_ms(hours: float) -> int:
    return int(hours * 3_600_000)


@dataclass
class Resources:
    """Per-process clients; build through :func:`resources`."""

    settings: Settings

    @property
    def session_limits(self) -> SessionLimits:
        s = self.settings
        return SessionLimits(
            s.database_lock_timeout_ms, s.database_statement_timeout_ms, s.database_idle_in_transaction_timeout_ms
        )

    @cached_property
    def engine(self) -> Engine:
        s = self.settings
        return build_engine(
            s.database_url,
            pool_size=s.database_pool_size,
            connect_timeout=s.database_connect_timeout_seconds,
            limits=self.session_limits,
        )

    @cached_property
    def autocommit_engine(self) -> Engine:
        s = self.settings
        return build_autocommit_engine(
            s.database_url,
            pool_size=s.database_pool_size,
            connect_timeout=s.database_connect_timeout_seconds,
            limits=self.session_limits,
        )

    @cached_property
    def redis(self) -> redis.Redis:
        return build_redis(self.settings.redis_url, socket_timeout=self.settings.redis_socket_timeout_seconds)

    @cached_property
    def raw_redis(self) -> RedisClient:
        """The same Redis, returning bytes: for reading streams that any producer writes."""
        return build_redis(
            self.settings.redis_url, socket_timeout=self.settings.redis_socket_timeout_seconds, decode_responses=False
        )

    def _outbox(
        self, spec: OutboxSpec, on_appended: Callable[[Sequence[OutboxEntry], int], None] | None = None
    ) -> PostgresStreamOutbox:
        s = self.settings
        durable_after_ms = int(s.outbox_durable_after_seconds * 1000)
        return PostgresStreamOutbox(
            self.engine,
            self.redis,
            s.redis_url,
            spec,
            durable_after_ms=durable_after_ms,
            on_new_generation=report_new_generation,
            on_appended=on_appended,
        )

    @cached_property
    def stream_clock(self) -> RedisStreamClock:
        return RedisStreamClock(self.redis, self.settings.redis_url)

    @cached_property
    def lobby_outbox(self) -> PostgresStreamOutbox:
        retention_ms = hours_ms(self.settings.lobby_stream_retention_hours)
        return self._outbox(replace(LOBBY_OUTBOX_SPEC, retention_ms=retention_ms), on_appended=observe_lobby_appends)

    @cached_property
    def health_events_outbox(self) -> PostgresStreamOutbox:
        spec = health_events_outbox(self.settings.health_stream_maxlen)
        return self._outbox(spec)

    @cached_property
    def health_event_store(self) -> PostgresHealthEventStore:
        return PostgresHealthEventStore(self.autocommit_engine)

    @cached_property
    def docker_runtime(self) -> DockerRuntime:
        """The Docker Engine at ``DOCKER_HOST`` (the SDK's own variable; its default socket when unset)."""
        s = self.settings
        return DockerRuntime(
            os.environ.get("DOCKER_HOST", ""), timeout=s.docker_timeout_seconds, host_name=s.docker_host_name
        )

    @cached_property
    def job_results_outbox(self) -> PostgresStreamOutbox:
        retention_ms = hours_ms(self.settings.job_results_retention_hours)
        return self._outbox(replace(JOB_RESULT_OUTBOX_SPEC, retention_ms=retention_ms))

    @cached_property
    def job_context(self) -> JobContext:
        s = self.settings
        return JobContext(
            queue=PostgresJobQueue(self.engine),
            streams=RedisJobStreams(
                self.raw_redis,
                s.redis_url,
                {START_JOBS_STREAM: START_JOBS_BRIDGE_KEYS.offset, STOP_JOBS_STREAM: STOP_JOBS_BRIDGE_KEYS.offset},
            ),
            engines=DockerEngineContainers(self.docker_runtime, os.environ.get("DOCKER_HOST", "")),
            results_outbox=self.job_results_outbox,
            health_outbox=self.health_events_outbox,
            settings=EngineSettings(
                endpoint_template=s.engine_endpoint_template,
                network=s.engine_network,
                memory_limit=s.engine_memory_limit,
                cpus=s.engine_cpus,
                restart_policy=s.restart_policy(),
                pull_missing_image=s.engine_image_pull == "missing",
                stop_timeout_seconds=s.stop_timeout_seconds,
                docker_host=s.docker_host_name,
                isolation=s.engine_isolation(),
            ),
            docker_retry_seconds=s.docker_retry_seconds,
            claim_seconds=s.job_claim_seconds,
        )

    @cached_property
    def job_dispatch(self) -> JobDispatch:
        """Jobs from their arrival to their answer, on the worker of the game's Docker host."""
        s = self.settings
        return JobDispatch(
            self.job_context,
            PostgresPlacement(self.engine),
            CeleryTurnForwarder(app),
            hosts=tuple(s.docker_host_names()),
            repair_after_seconds=s.job_repair_after_seconds,
        )

    @property
    def docker_queue(self) -> str:
        """Where this host's Docker-bound tasks go (``rtmanager.docker[.<host>]``)."""
        return on_docker_host(Queue.RTM_DOCKER, self.settings.docker_host_name)

    @cached_property
    def inspect_baselines(self) -> RedisInspectBaselines:
        return RedisInspectBaselines(self.redis, self.settings.redis_url)

    @cached_property
    def probe_states(self) -> RedisProbeStates:
        return RedisProbeStates(self.redis, self.settings.redis_url)

    @cached_property
    def prober(self) -> HttpProber:
        return HttpProber(self.settings.probe_health_path, self.settings.probe_timeout_seconds)

    @cached_property
    def docker_events_state(self) -> RedisDockerEventsState:
        return RedisDockerEventsState(self.redis, self.settings.redis_url, self.settings.docker_host_name)

    @cached_property
    def orphan_report(self) -> RedisOrphanReport:
        host = self.settings.docker_host_name
        return RedisOrphanReport(self.redis, self.settings.redis_url, on_host(ORPHANS_KEY, host))

    @cached_property
    def runtime_records(self) -> PostgresRuntimeRecords:
        return PostgresRuntimeRecords(self.engine, self.settings.docker_host_name)

    def health_consumer_uow(self) -> SqlAlchemyHealthConsumerUnitOfWork:
        return SqlAlchemyHealthConsumerUnitOfWork(self.autocommit_engine)

    @cached_property
    def gamemaster(self) -> GameMasterEntryPoints:
        return GameMasterEntryPoints(self)

    @cached_property
    def rtmanager(self) -> RuntimeManagerEntryPoints:
        return RuntimeManagerEntryPoints(self)

    def supervise(self) -> dict[str, str]:
        """Start every long-running singleton nobody holds the lease of."""
        s = self.settings
        launch_ttl = max(s.lease_ttl_seconds, 2 * s.supervisor_interval_seconds)

        def launch(task_name: str, ttl: float, queue: str) -> None:
            app.send_task(task_name, expires=ttl, queue=queue)

        singletons = registry(s.docker_host_names())
        return supervise(singletons, RedisLeaseView(self.redis, s.redis_url), launch, launch_ttl_seconds=launch_ttl)

    def relay(self, outbox: StreamOutbox) -> int:
        """One periodic sweep of an outbox, within one relay interval."""
        s = self.settings
        return relay(
            outbox,
            batch_games=s.outbox_relay_batch_size,
            time_budget_seconds=max(s.outbox_relay_interval_seconds, 1.0),
        )

    def close(self) -> None:
        for name in ("engine", "autocommit_engine"):
            if name in self.__dict__:
                self.__dict__[name].dispose()
        if "docker_runtime" in self.__dict__:
            self.docker_runtime.close()
        for name in ("redis", "raw_redis"):
            if name in self.__dict__:
                self.__dict__[name].close()


_lock = threading.Lock()
_current: tuple[int, Resources] | None = None


def resources() -> Resources:
    """The resources of this process, built on first use after start or fork."""
    global _current
    pid = os.getpid()
    with _lock:
        if _current is None or _current[0] != pid:
            _current = (pid, Resources(get_settings()))
        return _current[1]


def forget_resources() -> None:
    """Drop this process's clients (after a fork, or when tests change the settings)."""
    global _current
    with _lock:
        if _current is not None and _current[0] == os.getpid():
            _current[1].close()
        _current = None
