"""Real ``celery worker`` / ``celery beat`` processes of this application, for the integration tests and bench.

Every process runs in its own session with its output in a log file; the
cluster ends exactly the processes it started, by pid (process group for a
worker's pool children).  Settings are short (lease, supervisor, relay) so
take-overs and retries happen within seconds.  The processes run from the
source checkout (``REPO``), as an operator runs them there; ``bench/`` uses
this module too, which is why it lives in the package and not in ``tests/``
(it needs ``psutil``, a test requirement, and no pytest).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from galaxy_tasks.processes import (
    DEFAULT_POOL_QUEUES,
    beat_args,
    celery_command,
    long_running_worker_args,
    pool_worker_args,
)

REPO = Path(__file__).resolve().parents[2]


def spawn_in_repo(command: list[str], env: Mapping[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """A command of the repository as an operator runs it: from its root, output to ``log``, in a session
    of its own (so the caller stops it, and only it, by its pid)."""
    return subprocess.Popen(
        command, env=dict(env), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


FAST_SETTINGS: dict[str, str] = {
    "GALAXY_LEASE_TTL_SECONDS": "3",
    "GALAXY_SUPERVISOR_INTERVAL_SECONDS": "1",
    "GALAXY_BRIDGE_BLOCK_MS": "200",
    "GALAXY_OUTBOX_RELAY_INTERVAL_SECONDS": "0.5",
    "GALAXY_OUTBOX_DURABLE_AFTER_SECONDS": "0.5",
    "GALAXY_BROKER_VISIBILITY_TIMEOUT_SECONDS": "10",
    "GALAXY_TASK_SOFT_TIME_LIMIT_SECONDS": "6",
    "GALAXY_TASK_TIME_LIMIT_SECONDS": "8",
    "GALAXY_DATABASE_LOCK_TIMEOUT_MS": "1000",
    "GALAXY_BROKER_RESTORE_INTERVAL_SECONDS": "2",
    "GALAXY_REDIS_SOCKET_TIMEOUT_SECONDS": "2",
    "GALAXY_DATABASE_CONNECT_TIMEOUT_SECONDS": "2",
    "GALAXY_ORDER_REPAIR_AFTER_SECONDS": "5",
    "GALAXY_ORDER_REPAIR_INTERVAL_SECONDS": "2",
}

FAST_OBSERVATION_SETTINGS: dict[str, str] = {
    "GALAXY_PROBE_INTERVAL_SECONDS": "1",
    "GALAXY_PROBE_FAILURE_THRESHOLD": "2",
    "GALAXY_PROBE_SUCCESS_THRESHOLD": "1",
    "GALAXY_PROBE_STARTUP_GRACE_SECONDS": "0",
    "GALAXY_PROBE_TIMEOUT_SECONDS": "1",
    "GALAXY_INSPECT_INTERVAL_SECONDS": "2",
    "GALAXY_RECONCILE_INTERVAL_SECONDS": "3",
}
"""The Runtime Manager's probes, inspections and reconciler within seconds (real-Docker tests)."""


QUIET = ("--without-mingle", "--without-gossip")
"""Test workers skip the start-up chatter with their peers."""


def wait_until(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # noqa: BLE001 - the service may be restarting; keep polling
            last_error = exc
        time.sleep(interval)
    suffix = f" (last error: {last_error})" if last_error else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{suffix}")


@dataclass
class CeleryProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def pool_pids(self) -> list[int]:
        try:
            return [child.pid for child in psutil.Process(self.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Cluster:
    """Celery processes sharing one environment (URLs + fast settings)."""

    env: dict[str, str]
    log_dir: Path
    processes: list[CeleryProcess] = field(default_factory=list)

    def _environ(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("GALAXY_", "PROMETHEUS_"))}
        environ.update(FAST_SETTINGS)
        environ.update(self.env)
        return environ

    def _spawn(
        self,
        name: str,
        args: list[str],
        ready_marker: str | None,
        timeout: float = 60,
        environment: Mapping[str, str] | None = None,
    ) -> CeleryProcess:
        log_path = self.log_dir / f"{name}.log"
        log_file = log_path.open("ab")
        popen = subprocess.Popen(
            celery_command(*args),
            cwd=REPO,
            env={**self._environ(), **(environment or {})},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log_file.close()
        process = CeleryProcess(name, popen, log_path)
        self.processes.append(process)
        if ready_marker is not None:
            wait_until(
                lambda: ready_marker in process.log_text() or not process.alive(),
                timeout=timeout,
                what=f"{name} to start (log: {log_path})",
            )
            if not process.alive():
                raise AssertionError(f"{name} exited at start:\n{process.log_text()[-3000:]}")
        return process

    def pool_worker(
        self,
        name: str = "pool",
        concurrency: int = 2,
        *,
        queues: str | None = None,
        pool: str = "prefork",
        environment: Mapping[str, str] | None = None,
    ) -> CeleryProcess:
        """``environment``: extra variables of this worker alone (libfaketime's, for a clock ahead)."""
        chosen = DEFAULT_POOL_QUEUES if queues is None else tuple(queues.split(","))
        args = pool_worker_args(name, concurrency=concurrency, queues=chosen, pool=pool, extra=QUIET)
        return self._spawn(name, args, ready_marker=" ready.", environment=environment)

    def long_running_worker(
        self, name: str = "long-running", *, environment: Mapping[str, str] | None = None
    ) -> CeleryProcess:
        """The singletons' and the control tasks' worker; ``environment`` as for :meth:`pool_worker`."""
        args = long_running_worker_args(name, extra=QUIET)
        return self._spawn(name, args, ready_marker=" ready.", environment=environment)

    def beat(self, name: str = "beat") -> CeleryProcess:
        return self._spawn(name, beat_args(self.log_dir / f"{name}-schedule"), ready_marker="beat: Starting")

    def kill9(self, process: CeleryProcess) -> None:
        """``kill -9`` the worker and its pool children, as a crashed node would die."""
        pids = [process.pid, *process.pool_pids()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.popen.wait(timeout=10)

    def stop_all(self, grace: float = 15.0) -> None:
        for process in self.processes:
            if process.alive():
                process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes:
            try:
                process.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.popen.wait(timeout=10)
        self.processes.clear()
