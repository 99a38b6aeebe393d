"""Every setting of galaxy_tasks, read from the environment in one place.

Names marked fixed in SPEC §2 keep their names; the rest are ``GALAXY_*``
variables listed with their defaults in the README.  ``Settings.from_env``
fails with a message naming the variable when a value does not parse, so a
typo in a deployment surfaces at start-up rather than as odd behaviour.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

from galaxy_tasks.domain.rtmanager.convergence import ConvergenceBounds, convergence_bounds
from galaxy_tasks.domain.rtmanager.jobs import EngineIsolation, isolation_problem, parse_capabilities

SAFE_ISOLATION = EngineIsolation()

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/galaxy"
DEFAULT_ENGINE_ENDPOINT_TEMPLATE = "http://galaxy-game-{game_id}:8080"


class ConfigError(ValueError):
    """A ``GALAXY_*`` variable holds a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """The resolved configuration; build it with :meth:`from_env`."""

    redis_url: str = DEFAULT_REDIS_URL
    broker_url: str = DEFAULT_REDIS_URL
    database_url: str = DEFAULT_DATABASE_URL
    engine_endpoint_template: str = DEFAULT_ENGINE_ENDPOINT_TEMPLATE
    # Stream bridge.
    bridge_batch_size: int = 200
    bridge_block_ms: int = 500
    lease_ttl_seconds: float = 10.0
    supervisor_interval_seconds: float = 2.0
    backlog_threshold: int = 500
    backlog_batch_size: int = 2000
    backlog_partitions: int = 2
    # Flow control: while this many handed-on messages wait in the broker (no worker took them
    # yet), the bridge hands on nothing more (entries wait in the stream, where they are safe) and
    # then hands on what waited in ordered per-partition chunks; a read of at most twice this many
    # entries goes per event.  0: off (only the lag threshold above switches to chunks).
    dispatch_window: int = 2
    # Per-event tasks running at once in one worker process share a transaction (thread pools).
    group_commit_max_batch: int = 100
    # Per-game order repair (a handed-on entry the broker lost).
    order_repair_after_seconds: float = 30.0
    order_repair_interval_seconds: float = 10.0
    order_repair_max_games: int = 200
    # Runtime Manager health events: runtime:health_events is trimmed to about this many entries
    # (never past the Game Master bridge's offset).
    health_stream_maxlen: int = 100_000
    # Runtime Manager health sweeps.
    inspect_interval_seconds: float = 10.0
    docker_timeout_seconds: float = 10.0
    reconcile_interval_seconds: float = 15.0
    probe_interval_seconds: float = 5.0
    probe_timeout_seconds: float = 2.0
    probe_health_path: str = "/healthz"
    probe_failure_threshold: int = 3
    probe_success_threshold: int = 1
    probe_startup_grace_seconds: float = 10.0
    # Several Docker hosts: every host's RTM worker serves its own queues (rtmanager.docker.<host>,
    # rtmanager.jobs.<host>, galaxy.long_running.<host>).  Empty: one Docker host, plain queues.
    docker_hosts: str = ""
    docker_host_name: str = ""
    # Runtime Manager start/stop jobs: how engine containers run.
    engine_network: str = "galaxy-engines"
    engine_memory_limit: str = "512m"
    engine_cpus: float = 1.0
    engine_restart_policy: str = "on-failure:3"
    engine_image_pull: str = "missing"
    # Engine isolation (safe defaults: all capabilities dropped, no new privileges, a pids limit).
    engine_pids_limit: int = SAFE_ISOLATION.pids_limit
    engine_cap_add: str = ""
    engine_no_new_privileges: bool = SAFE_ISOLATION.no_new_privileges
    engine_read_only: bool = SAFE_ISOLATION.read_only_rootfs
    engine_user: str = SAFE_ISOLATION.user
    stop_timeout_seconds: float = 10.0
    docker_retry_seconds: float = 30.0
    # A job's claim on its game: older than this, its job died or overran and the periodic pass settles
    # the game from Docker.  Queued jobs no worker took for this long are handed on again.
    job_claim_seconds: float = 300.0
    job_repair_after_seconds: float = 30.0
    job_repair_interval_seconds: float = 10.0
    # Outbox relay.
    outbox_relay_interval_seconds: float = 1.0
    outbox_relay_batch_size: int = 500
    # An outbox row is deleted only this long after its entry was appended: by then Redis has it on
    # disk (appendfsync everysec writes every second, at worst two).
    outbox_durable_after_seconds: float = 3.0
    # gm:lobby_events and runtime:job_results keep a week by default; never an entry a consumer
    # group has not read.
    lobby_stream_retention_hours: float = 168.0
    job_results_retention_hours: float = 168.0
    # Broker and clients.
    broker_visibility_timeout_seconds: int = 60
    broker_restore_interval_seconds: int = 5
    worker_prefetch_multiplier: int = 1
    redis_socket_timeout_seconds: float = 5.0
    database_pool_size: int = 5
    database_connect_timeout_seconds: int = 5
    # Bounded waits in PostgreSQL sessions (0 turns one off): a row lock held elsewhere, a statement,
    # a transaction left idle.  Every session has them, the jobs' too (no transaction of theirs stays
    # open across a Docker call).
    database_lock_timeout_ms: int = 5_000
    database_statement_timeout_ms: int = 30_000
    database_idle_in_transaction_timeout_ms: int = 60_000
    # Pool tasks: a soft limit (the task raises and is retried) and a hard one (the process is
    # replaced, the message redelivered), both under the broker's visibility timeout so a task
    # still running is never handed to a second worker.  Start/stop jobs and the long-running
    # singletons have none.
    task_soft_time_limit_seconds: int = 30
    task_time_limit_seconds: int = 45
    # Beat: the default file scheduler, or redbeat (schedule and a lock in Redis, for a standby beat).
    beat_scheduler: str = "file"
    beat_lock_timeout_seconds: int = 25
    # Operations.
    task_events: bool = False
    metrics_dir: str = ""
    metrics_port: int = 9808
    metrics_address: str = "127.0.0.1"
    metrics_serve: bool = False
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        redis_url = env.get("GALAXY_REDIS_URL") or DEFAULT_REDIS_URL
        values: dict[str, object] = {
            "redis_url": redis_url,
            "broker_url": env.get("GALAXY_BROKER_URL") or redis_url,
            "database_url": env.get("GALAXY_DATABASE_URL") or DEFAULT_DATABASE_URL,
            "engine_endpoint_template": env.get("GALAXY_ENGINE_ENDPOINT_TEMPLATE") or DEFAULT_ENGINE_ENDPOINT_TEMPLATE,
        }
        fixed = set(values)
        for field in fields(cls):
            if field.name in fixed:
                continue
            variable = env_name(field.name)
            raw = env.get(variable)
            if raw is None or raw == "":
                continue
            values[field.name] = _parse(variable, raw, type(field.default))
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        positive = (
            "bridge_batch_size",
            "bridge_block_ms",
            "lease_ttl_seconds",
            "supervisor_interval_seconds",
            "backlog_batch_size",
            "backlog_partitions",
            "group_commit_max_batch",
            "outbox_relay_interval_seconds",
            "health_stream_maxlen",
            "inspect_interval_seconds",
            "docker_timeout_seconds",
            "reconcile_interval_seconds",
            "probe_interval_seconds",
            "probe_timeout_seconds",
            "probe_failure_threshold",
            "probe_success_threshold",
            "order_repair_after_seconds",
            "order_repair_interval_seconds",
            "order_repair_max_games",
            "outbox_relay_batch_size",
            "lobby_stream_retention_hours",
            "job_results_retention_hours",
            "job_repair_after_seconds",
            "job_repair_interval_seconds",
            "broker_visibility_timeout_seconds",
            "broker_restore_interval_seconds",
            "worker_prefetch_multiplier",
            "redis_socket_timeout_seconds",
            "database_pool_size",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{env_name(name)} must be positive, got {getattr(self, name)!r}")
        self._validate_bounded_waits()
        if self.bridge_block_ms / 1000 >= self.lease_ttl_seconds / 2:
            raise ConfigError(
                "GALAXY_BRIDGE_BLOCK_MS must be well under GALAXY_LEASE_TTL_SECONDS "
                "(the bridge renews its lease between reads)"
            )
        self._validate_engines_and_jobs()
        for name in [*self.docker_host_names(), self.docker_host_name]:
            if name and not _HOST_NAME.match(name):
                raise ConfigError(f"Docker host name {name!r}: use lower-case letters, digits and '-' (queue names)")
        if self.docker_host_name and self.docker_host_name not in self.docker_host_names():
            raise ConfigError(
                f"GALAXY_DOCKER_HOST_NAME={self.docker_host_name!r} "
                f"is not one of GALAXY_DOCKER_HOSTS={self.docker_hosts!r}"
            )
        if self.beat_scheduler not in ("file", "redbeat"):
            raise ConfigError(f"GALAXY_BEAT_SCHEDULER={self.beat_scheduler!r}: use file or redbeat")

    def _validate_engines_and_jobs(self) -> None:
        if self.stop_timeout_seconds < 0 or self.docker_retry_seconds < 0 or self.engine_cpus <= 0:
            raise ConfigError(
                "GALAXY_STOP_TIMEOUT_SECONDS and GALAXY_DOCKER_RETRY_SECONDS must be >= 0, GALAXY_ENGINE_CPUS > 0"
            )
        if not _MEMORY.match(self.engine_memory_limit):
            raise ConfigError(
                f"GALAXY_ENGINE_MEMORY_LIMIT={self.engine_memory_limit!r}: use bytes or a size like 512m, 2g"
            )
        if self.engine_image_pull not in ("missing", "never"):
            raise ConfigError(f"GALAXY_ENGINE_IMAGE_PULL={self.engine_image_pull!r}: use missing or never")
        self.restart_policy()  # raises ConfigError when it does not parse
        if self.job_claim_seconds <= self.docker_retry_seconds + self.stop_timeout_seconds:
            raise ConfigError(
                f"GALAXY_JOB_CLAIM_SECONDS={self.job_claim_seconds:g} must exceed GALAXY_DOCKER_RETRY_SECONDS + "
                "GALAXY_STOP_TIMEOUT_SECONDS (a job still retrying Docker would lose its game)"
            )
        problem = isolation_problem(self.engine_isolation())
        if problem is not None:
            raise ConfigError(problem)
        if "{game_id}" not in self.engine_endpoint_template:
            raise ConfigError("GALAXY_ENGINE_ENDPOINT_TEMPLATE must contain {game_id}")

    def convergence_bounds(self) -> ConvergenceBounds:
        """How long the health view may disagree with Docker under these settings (README "Convergence")."""
        return convergence_bounds(
            reconcile_interval=self.reconcile_interval_seconds,
            inspect_interval=self.inspect_interval_seconds,
            probe_interval=self.probe_interval_seconds,
            probe_startup_grace=self.probe_startup_grace_seconds,
            probe_success_threshold=self.probe_success_threshold,
            relay_interval=self.outbox_relay_interval_seconds,
            probe_timeout=self.probe_timeout_seconds,
            docker_timeout=self.docker_timeout_seconds,
        )

    def _validate_bounded_waits(self) -> None:
        soft, hard, visibility = (
            self.task_soft_time_limit_seconds,
            self.task_time_limit_seconds,
            self.broker_visibility_timeout_seconds,
        )
        if not 0 < soft < hard < visibility:
            raise ConfigError(
                "need 0 < GALAXY_TASK_SOFT_TIME_LIMIT_SECONDS < GALAXY_TASK_TIME_LIMIT_SECONDS < "
                "GALAXY_BROKER_VISIBILITY_TIMEOUT_SECONDS (a task still running must never be redelivered), "
                f"got {soft} / {hard} / {visibility}"
            )
        limits = (
            "database_lock_timeout_ms",
            "database_statement_timeout_ms",
            "database_idle_in_transaction_timeout_ms",
        )
        for name in limits:
            if getattr(self, name) < 0:
                raise ConfigError(f"{env_name(name)} must be >= 0 (0 turns it off), got {getattr(self, name)!r}")
        if self.dispatch_window < 0:
            raise ConfigError(f"GALAXY_DISPATCH_WINDOW must be >= 0 (0: off), got {self.dispatch_window}")
        if self.outbox_durable_after_seconds < 0:
            raise ConfigError(
                f"GALAXY_OUTBOX_DURABLE_AFTER_SECONDS must be >= 0, got {self.outbox_durable_after_seconds}"
            )

    def docker_host_names(self) -> list[str]:
        """``GALAXY_DOCKER_HOSTS`` as a list; empty with a single Docker host."""
        return [name.strip() for name in self.docker_hosts.split(",") if name.strip()]

    def engine_isolation(self) -> EngineIsolation:
        """``GALAXY_ENGINE_PIDS_LIMIT``, ``_CAP_ADD``, ``_NO_NEW_PRIVILEGES``, ``_READ_ONLY`` and ``_USER``."""
        return EngineIsolation(
            pids_limit=self.engine_pids_limit,
            cap_add=parse_capabilities(self.engine_cap_add),
            no_new_privileges=self.engine_no_new_privileges,
            read_only_rootfs=self.engine_read_only,
            user=self.engine_user,
        )

    def restart_policy(self) -> dict[str, object]:
        """``GALAXY_ENGINE_RESTART_POLICY`` (``no``, ``always``, ``unless-stopped``, ``on-failure[:N]``) for Docker."""
        name, _, count = self.engine_restart_policy.partition(":")
        if name not in ("no", "always", "unless-stopped", "on-failure") or (count and name != "on-failure"):
            raise ConfigError(
                f"GALAXY_ENGINE_RESTART_POLICY={self.engine_restart_policy!r}: "
                "use no, always, unless-stopped or on-failure[:max retries]"
            )
        if not count:
            return {"Name": name}
        if not count.isdigit():
            raise ConfigError(f"GALAXY_ENGINE_RESTART_POLICY={self.engine_restart_policy!r}: bad retry count")
        return {"Name": name, "MaximumRetryCount": int(count)}


_MEMORY = re.compile(r"^[0-9]+[bkmgBKMG]?$")
_HOST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def env_name(field_name: str) -> str:
    """The environment variable behind a settings field."""
    return f"GALAXY_{field_name.upper()}"


def _parse(variable: str, raw: str, kind: type) -> object:
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
            return value
    except ValueError:
        raise ConfigError(f"{variable}={raw!r} is not a valid {kind.__name__}") from None
    return raw


_cached: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    global _cached
    if _cached is None:
        _cached = Settings.from_env()
    return _cached


def reset_settings_cache() -> None:
    """Forget the cached settings (tests that change the environment call this)."""
    global _cached
    _cached = None
