"""How busy the machine was with other work while the bench measured.

On a shared 2-core machine another test run can halve every figure, so each
measured run records the CPU the rest of the machine used: the system's busy
time minus that of the bench's own processes (this process, the Celery
processes it started, and the PostgreSQL and Redis servers it drives).
PostgreSQL backends of other clients count as the bench's, so the figure errs
low.  :func:`wait_quiet` waits (bounded) for other work to calm down before a
scenario starts.

It also splits the bench's own CPU by role (the bridge's worker, the pool
worker's main process, its pool children, PostgreSQL, Redis, the bench
itself), so a run can say where each event's CPU went.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import psutil

_SERVER_NAMES = ("postgres", "redis-server", "redis")


def _busy_seconds() -> float:
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle


def _own_pids() -> set[int]:
    me = psutil.Process(os.getpid())
    pids = {me.pid, *(child.pid for child in me.children(recursive=True))}
    for proc in psutil.process_iter(["name"]):
        name = (proc.info.get("name") or "").lower()
        if name.startswith(_SERVER_NAMES):
            pids.add(proc.pid)
    return pids


def _role_of(pid: int) -> str:
    """Which part of the rig a process is: see :data:`ROLES`."""
    try:
        proc = psutil.Process(pid)
        if pid == os.getpid():
            return "bench"
        name = proc.name().lower()
        if name.startswith("postgres"):
            return "postgresql"
        if name.startswith("redis"):
            return "redis"
        cmdline = " ".join(proc.cmdline())
        if "celery" not in cmdline:
            return "other"
        if "long-running" in cmdline:
            return "bridge worker"
        parent = proc.parent()
        if parent is not None and "celery" in " ".join(parent.cmdline()) and "long-running" not in cmdline:
            return "pool children"
        return "pool main"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "other"


ROLES = ("pool main", "pool children", "bridge worker", "postgresql", "redis", "bench", "other")
"""The roles of :func:`_role_of`, in the order the bench prints them."""


def _cpu_of(pid: int) -> float | None:
    try:
        t = psutil.Process(pid).cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return t.user + t.system


@dataclass
class Load:
    seconds: float = 0.0
    foreign_cpu_seconds: float = 0.0
    own_cpu_by_role: dict[str, float] = field(default_factory=dict)
    """CPU seconds of the bench's own processes over the run, per role (see :data:`ROLES`)."""

    @property
    def foreign_share(self) -> float:
        """Other work's share of the machine's CPU capacity over the run (0..1)."""
        capacity = self.seconds * (os.cpu_count() or 1)
        return 0.0 if capacity <= 0 else max(self.foreign_cpu_seconds, 0.0) / capacity


class LoadMonitor:
    """Samples once a second in a thread; ``with LoadMonitor() as m: ...; m.load``."""

    def __init__(self, interval: float = 1.0) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-load-monitor", daemon=True)
        self._own_cpu: dict[int, float] = {}
        self._roles: dict[int, str] = {}
        self._by_role: dict[str, float] = {}
        self._own_total = 0.0
        self._busy0 = 0.0
        self._t0 = 0.0
        self.load = Load()

    def __enter__(self) -> LoadMonitor:
        self._t0 = time.perf_counter()
        self._busy0 = _busy_seconds()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        busy = _busy_seconds() - self._busy0
        self.load = Load(time.perf_counter() - self._t0, busy - self._own_total, dict(self._by_role))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        for pid in _own_pids():
            now = _cpu_of(pid)
            if now is None:
                continue
            before = self._own_cpu.get(pid)
            self._own_cpu[pid] = now
            if before is not None:
                self._own_total += now - before
                role = self._roles.setdefault(pid, _role_of(pid))
                self._by_role[role] = self._by_role.get(role, 0.0) + now - before


def busy_share(seconds: float = 1.0) -> float:
    """The whole machine's busy share over ``seconds`` (0..1)."""
    return psutil.cpu_percent(interval=seconds) / 100


def wait_quiet(*, below: float, timeout: float) -> float:
    """Wait until the machine is less than ``below`` busy (bounded); return the last share seen."""
    deadline = time.monotonic() + timeout
    share = busy_share()
    while share >= below and time.monotonic() < deadline:
        share = busy_share()
    return share
