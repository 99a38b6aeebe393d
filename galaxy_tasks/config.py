"""Every setting of galaxy_tasks, read from the environment in one place.

Names marked fixed in SPEC §2 keep their names; the rest are ``GALAXY_*``
variables.  Each field of :class:`Settings` carries its meaning (:func:`setting`),
from which ``python -m galaxy_tasks.cli.config_docs`` writes
``docs/configuration.md``.  ``Settings.from_env`` fails with a message naming
the variable when a value does not parse, so a typo in a deployment surfaces
at start-up rather than as odd behaviour.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TypeVar

from galaxy_tasks.domain.errors import GalaxyError
from galaxy_tasks.domain.rtmanager.convergence import ConvergenceBounds, convergence_bounds
from galaxy_tasks.domain.rtmanager.jobs import EngineIsolation, isolation_problem, parse_capabilities
from galaxy_tasks.logs import LOG_FORMATS

SAFE_ISOLATION = EngineIsolation()
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/galaxy"
DEFAULT_ENGINE_ENDPOINT_TEMPLATE = "http://galaxy-game-{game_id}:8080"


class ConfigError(GalaxyError, ValueError):
    """A ``GALAXY_*`` variable holds a value that cannot be used."""


SECRET_FILE_SUFFIX = "_FILE"


def _secret(env: Mapping[str, str], variable: str) -> str:
    """A URL that may carry a password: from ``variable``, or read from the file ``variable_FILE`` names.

    The ``_FILE`` form keeps the password out of the environment too (``docker
    inspect`` shows a container's environment): a compose or Kubernetes secret
    mounted as a file, or a file of mode 0600 beside a systemd unit.
    """
    direct = env.get(variable) or ""
    path = env.get(variable + SECRET_FILE_SUFFIX) or ""
    if direct and path:
        raise ConfigError(f"set {variable} or {variable}{SECRET_FILE_SUFFIX}, not both")
    if not path:
        return direct
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
    except OSError as exc:
        raise ConfigError(f"{variable}{SECRET_FILE_SUFFIX}: cannot read {path}: {exc.strerror}") from exc
    if not value:
        raise ConfigError(f"{variable}{SECRET_FILE_SUFFIX}: {path} is empty")
    return value


_T = TypeVar("_T")


def setting(default: _T, doc: str, *, shown: str | None = None) -> _T:
    """A field of :class:`Settings` with its meaning, as ``docs/configuration.md`` states it.

    ``shown`` is how the page writes the default when not as the value itself
    (a default taken from another variable, ``168`` for ``168.0``).
    """
    metadata = {"doc": doc} if shown is None else {"doc": doc, "shown": shown}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """The resolved configuration; build it with :meth:`from_env`."""

    # Fixed names (SPEC §2).
    redis_url: str = setting(
        DEFAULT_REDIS_URL,
        "Redis holding the streams, offsets, leases, shared state and the Celery results (fixed name); "
        "or `GALAXY_REDIS_URL_FILE`, a file holding it (a secret: the password stays out of the environment)",
    )
    broker_url: str = setting(
        DEFAULT_REDIS_URL,
        "Celery broker; Redis or RabbitMQ (`amqp://…`, with publisher confirms; the pipeline tests run on "
        "both) (fixed name); or `GALAXY_BROKER_URL_FILE`, a file holding it",
        shown="value of `GALAXY_REDIS_URL`",
    )
    database_url: str = setting(
        DEFAULT_DATABASE_URL,
        "PostgreSQL, as an SQLAlchemy URL; `galaxy-tasks migrate` creates the database if missing (fixed name); "
        "or `GALAXY_DATABASE_URL_FILE`, a file holding it",
    )
    engine_endpoint_template: str = setting(
        DEFAULT_ENGINE_ENDPOINT_TEMPLATE,
        "engine URL of a game (fixed name); must contain `{game_id}`, the only placeholder; a start job "
        "records it and the probes use it",
    )
    # Stream bridge and its flow control.
    bridge_batch_size: int = setting(200, "entries a bridge reads per `XREAD` in normal mode")
    bridge_block_ms: int = setting(
        500, "how long a bridge's `XREAD` blocks waiting for new entries; must stay well under half the lease TTL"
    )
    lease_ttl_seconds: float = setting(
        10.0, "lease of a long-running task; a dead holder is replaced after about this long"
    )
    supervisor_interval_seconds: float = setting(2.0, "how often beat runs `galaxy.supervise_long_running`")
    backlog_threshold: int = setting(500, "bridge lag (entries) from which it switches to backlog mode (chunks)")
    backlog_batch_size: int = setting(2000, "entries a bridge reads per `XREAD` in backlog mode")
    backlog_partitions: int = setting(
        2, "game partitions a batch handed on in chunks is split into (chunks of a batch never share a game)"
    )
    dispatch_window: int = setting(
        2,
        "flow control: while this many handed-on messages wait in the broker the bridge hands on nothing "
        "more; what waited then goes in chunks when it is more than twice this many entries (0: off, only "
        "`GALAXY_BACKLOG_THRESHOLD` switches)",
    )
    # Game Master: group commit and per-game order repair (a handed-on entry the broker lost).
    group_commit_max_batch: int = setting(
        100, "most per-event tasks of one thread-pool worker committed by one transaction"
    )
    order_repair_after_seconds: float = setting(
        30.0,
        "how long a game may stay behind (parked entries, or a cursor short of the last handed-on entry) "
        "before its entries are re-read from the stream",
    )
    order_repair_interval_seconds: float = setting(10.0, "how often beat runs the order repair")
    order_repair_max_games: int = setting(200, "games repaired per run at most")
    # Runtime Manager health events and sweeps.
    health_stream_maxlen: int = setting(
        100_000,
        "`runtime:health_events` is trimmed to about this many entries, never past the Game Master's offset "
        "nor past an entry its order repair may still re-read",
    )
    inspect_interval_seconds: float = setting(
        10.0, "how often beat runs `rtmanager.inspect_sweep` (also the `expires` of the inspect tasks it fans out)"
    )
    docker_timeout_seconds: float = setting(
        10.0, "timeout of a Docker Engine API call (`DOCKER_HOST` is the Docker SDK's own variable)"
    )
    reconcile_interval_seconds: float = setting(15.0, "how often beat runs `rtmanager.reconcile`")
    probe_interval_seconds: float = setting(
        5.0, "how often beat runs `rtmanager.probe_sweep`; the probes it sends are spread over half of it"
    )
    probe_timeout_seconds: float = setting(2.0, "timeout of one HTTP probe")
    probe_health_path: str = setting("/healthz", "path probed on each engine's `engine_endpoint`")
    probe_failure_threshold: int = setting(3, "consecutive failures that publish `probe_failed` (once)")
    probe_success_threshold: int = setting(
        1,
        "consecutive successful probes (with a healthy inspect, all after the down event) that end a game's "
        "down period with `probe_recovered`",
    )
    probe_startup_grace_seconds: float = setting(
        10.0, "an engine up for less than this (Docker's uptime) is not probed yet"
    )
    # Several Docker hosts; empty: one Docker host, plain queues.
    docker_hosts: str = setting(
        "",
        "several Docker hosts: their names, comma-separated (lower-case, digits, `-`); each gets its own "
        "queues `rtmanager.docker.<host>`, `rtmanager.jobs.<host>`, `galaxy.long_running.<host>` "
        "(`deploy/README.md`)",
    )
    docker_host_name: str = setting(
        "", "on a Docker host's own RTM and long-running workers: which of `GALAXY_DOCKER_HOSTS` this is"
    )
    # Runtime Manager start/stop jobs: how engine containers run.
    engine_network: str = setting(
        "galaxy-engines",
        "Docker network of engine containers (`host`, `bridge`, or a user-defined network — which must exist,"
        " so that `galaxy-game-{game_id}` resolves)",
    )
    engine_memory_limit: str = setting("512m", "memory limit of an engine container (bytes or `k`/`m`/`g`)")
    engine_cpus: float = setting(1.0, "CPUs an engine container may use (Docker `NanoCpus`)")
    engine_restart_policy: str = setting(
        "on-failure:3", "`no`, `always`, `unless-stopped` or `on-failure[:max retries]`"
    )
    engine_image_pull: str = setting(
        "missing", "`missing`: pull an image the Docker host lacks; `never`: such a start fails with `image_not_found`"
    )
    # Engine isolation (safe defaults: all capabilities dropped, no new privileges, a pids limit).
    engine_pids_limit: int = setting(
        SAFE_ISOLATION.pids_limit,
        "processes and threads an engine container may have at once (a fork bomb stops there, not at the "
        "host); `0`: no limit",
    )
    engine_cap_add: str = setting(
        "",
        "every Linux capability is dropped (`cap_drop ALL`); the ones named here (comma-separated, e.g. "
        "`NET_BIND_SERVICE` for a port under 1024) are given back",
    )
    engine_no_new_privileges: bool = setting(
        SAFE_ISOLATION.no_new_privileges,
        "`no-new-privileges`: setuid binaries and file capabilities in the image give nothing",
    )
    engine_read_only: bool = setting(
        SAFE_ISOLATION.read_only_rootfs,
        "a read-only root filesystem (`/tmp` becomes a 64 MB tmpfs); turn on when the image writes nowhere else",
    )
    engine_user: str = setting(
        SAFE_ISOLATION.user, "`user`, `uid` or `uid:gid` the engine runs as; empty: the image's own user"
    )
    # Start/stop jobs: Docker waits, claims and their repair.
    stop_timeout_seconds: float = setting(10.0, "a stop job's grace between `SIGTERM` and `SIGKILL`")
    docker_retry_seconds: float = setting(
        30.0, "how long a job retries an unreachable Docker Engine before `docker_unavailable`"
    )
    job_claim_seconds: float = setting(
        300.0,
        "a start/stop job's claim on its game older than this is its job's no more (it died or hangs): "
        "`rtmanager.repair_jobs` settles the game from Docker and runs the job again; must exceed "
        "`GALAXY_DOCKER_RETRY_SECONDS` + `GALAXY_STOP_TIMEOUT_SECONDS` (and your slowest image pull)",
    )
    job_repair_after_seconds: float = setting(
        30.0, "a queued job no worker has taken for this long gets its game's turn sent again (its message was lost)"
    )
    job_repair_interval_seconds: float = setting(10.0, "how often beat runs `rtmanager.repair_jobs` (per Docker host)")
    # Outboxes and stream retention.
    outbox_relay_interval_seconds: float = setting(
        1.0,
        "how often beat runs `gamemaster.relay_lobby_events`, `rtmanager.relay_health_events` and "
        "`rtmanager.relay_job_results` (also their time budget, at least 1 s)",
    )
    outbox_relay_batch_size: int = setting(500, "games the periodic relay handles per round")
    outbox_durable_after_seconds: float = setting(
        3.0, "an outbox row is deleted only this long after its entry was appended (Redis has it on disk by then)"
    )
    lobby_stream_retention_hours: float = setting(
        168.0,
        "`gm:lobby_events` drops entries older than this (checked by its relay), never one a consumer group "
        "has not read or acknowledged",
        shown="`168`",
    )
    job_results_retention_hours: float = setting(168.0, "the same for `runtime:job_results`", shown="`168`")
    # Broker and clients.
    broker_visibility_timeout_seconds: int = setting(
        60, "Redis broker: an unacknowledged message is redelivered after this long"
    )
    broker_restore_interval_seconds: int = setting(
        5, "Redis broker: how often workers look for unacknowledged messages past the visibility timeout"
    )
    worker_prefetch_multiplier: int = setting(1, "Celery `worker_prefetch_multiplier`")
    redis_socket_timeout_seconds: float = setting(
        5.0, "connect and read timeout of Redis clients (and of the Redis broker transport)"
    )
    database_pool_size: int = setting(5, "SQLAlchemy pool size per process (and as many overflow connections)")
    database_connect_timeout_seconds: int = setting(5, "PostgreSQL connect timeout")
    # Bounded waits in PostgreSQL sessions (0 turns one off) and pool tasks' time limits.
    database_lock_timeout_ms: int = setting(
        5_000,
        "PostgreSQL `lock_timeout` of every session, the start/stop jobs' too (they hold no transaction across "
        "a Docker call): a row held elsewhere makes the task retry instead of holding a pool slot (`0`: off)",
    )
    database_statement_timeout_ms: int = setting(30_000, "PostgreSQL `statement_timeout`, same sessions (`0`: off)")
    database_idle_in_transaction_timeout_ms: int = setting(
        60_000, "PostgreSQL `idle_in_transaction_session_timeout`, same sessions (`0`: off)"
    )
    task_soft_time_limit_seconds: int = setting(
        30, "pool tasks: the task is interrupted and retried (start/stop jobs and the long-running tasks have no limit)"
    )
    task_time_limit_seconds: int = setting(
        45,
        "pool tasks: the process is replaced and the message redelivered; must stay under "
        "`GALAXY_BROKER_VISIBILITY_TIMEOUT_SECONDS`, so a task still running is never handed to a second "
        "worker",
    )
    # Beat.
    beat_scheduler: str = setting(
        "file", "`redbeat`: the schedule and a lock live in Redis, so a second beat is a hot standby (`deploy/`)"
    )
    beat_lock_timeout_seconds: int = setting(
        25, "with `redbeat`: how long a dead beat's lock keeps the standby waiting"
    )
    # Operations.
    task_events: bool = setting(
        False,
        "workers send Celery task events from the start (`worker_send_task_events`, `task_send_sent_event`; "
        "about 1 ms of CPU per task); Flower switches them on at runtime anyway, and `galaxy-tasks run` "
        "starts its workers with `-E`",
    )
    metrics_dir: str = setting(
        "", "folder for prometheus-client's multiprocess files; `galaxy-tasks run` uses `.run/metrics` when empty"
    )
    metrics_port: int = setting(
        9808,
        "port of the metrics endpoint (`galaxy-tasks run`, `galaxy-tasks metrics`, and each node with "
        "`GALAXY_METRICS_SERVE=1`), on `GALAXY_METRICS_ADDRESS`; taken already: the process stops at start",
    )
    metrics_address: str = setting("127.0.0.1", "address the metrics endpoint binds (`0.0.0.0` in a container)")
    metrics_serve: bool = setting(
        False,
        "`1`: every worker and beat serves its own node's metrics on `GALAXY_METRICS_PORT` (one endpoint per "
        "container; `deploy/`)",
    )
    health_dir: str = setting(
        "",
        "folder where each worker keeps its liveness file `alive` (touched every "
        "`GALAXY_HEALTH_INTERVAL_SECONDS` by its event loop) and readiness file `ready`; "
        "`galaxy-tasks healthcheck` reads them (empty: no files)",
    )
    health_interval_seconds: float = setting(
        10.0, "how often a worker touches its liveness file; `galaxy-tasks healthcheck` allows three intervals"
    )
    migrate_lock_wait_seconds: float = setting(
        600.0,
        "how long `galaxy-tasks migrate` waits while another one (every host migrates at boot) holds the "
        "migration lock, a PostgreSQL advisory lock; then it exits 3",
    )
    log_level: str = setting(
        "",
        "level of galaxy_tasks' own log lines (`DEBUG` adds each entry handled and each bridge batch; "
        "`WARNING` leaves only what needs a look); unset, they follow the process's level (Celery's "
        "`--loglevel`), which stays the level of Celery's own lines",
    )
    log_format: str = setting(
        "logfmt",
        "`logfmt`: Celery's text lines, galaxy_tasks' as `event=… game_id=…` pairs with `task_id=` and "
        "`task=` inside a task; `json`: one JSON object per line for every line, Celery's too, with "
        "`task_id` and `task` inside a task",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        redis_url = _secret(env, "GALAXY_REDIS_URL") or DEFAULT_REDIS_URL
        values: dict[str, object] = {
            "redis_url": redis_url,
            "broker_url": _secret(env, "GALAXY_BROKER_URL") or redis_url,
            "database_url": _secret(env, "GALAXY_DATABASE_URL") or DEFAULT_DATABASE_URL,
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
            "migrate_lock_wait_seconds",
            "health_interval_seconds",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{env_name(name)} must be positive, got {getattr(self, name)!r}")
        self._validate_bounded_waits()
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"GALAXY_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {self.log_format!r}")
        if self.log_level and self.log_level.upper() not in _LOG_LEVELS:
            raise ConfigError(f"GALAXY_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {self.log_level!r}")
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
        """How long the health view may disagree with Docker under these settings (docs/architecture.md)."""
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
