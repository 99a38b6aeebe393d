"""The command lines of the system's processes, in one place (SPEC §6 process model).

``galaxy-tasks run``, the test cluster and the benchmark all start the same
kinds of process; each gets its ``celery -A galaxy_tasks …`` arguments here so
a change to the process model (a queue, a pool type) is made once.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from galaxy_tasks.queues import LONG_RUNNING_QUEUES, POOL_QUEUES

DEFAULT_POOL_QUEUES: tuple[str, ...] = tuple(queue.value for queue in POOL_QUEUES)
LONG_RUNNING_WORKER_QUEUES: tuple[str, ...] = tuple(queue.value for queue in LONG_RUNNING_QUEUES)

LONG_RUNNING_THREADS = 9
"""Threads of the long-running worker: one per singleton (four) with room for take-overs (two), and
three for the control tasks of ``galaxy.periodic`` (supervisor, relays, order repair)."""


def celery_command(*args: str) -> list[str]:
    """``python -m celery -A galaxy_tasks <args>`` with this interpreter."""
    return [sys.executable, "-m", "celery", "-A", "galaxy_tasks", *args]


def pool_worker_args(
    name: str,
    *,
    concurrency: int,
    queues: Sequence[str] = DEFAULT_POOL_QUEUES,
    pool: str = "prefork",
    loglevel: str = "INFO",
    extra: Sequence[str] = (),
) -> list[str]:
    """A worker of the event pools (prefork: one process per concurrent task)."""
    return [
        "worker",
        "-Q",
        ",".join(queues),
        "-P",
        pool,
        "-c",
        str(concurrency),
        "-n",
        f"{name}@%h",
        "--loglevel",
        loglevel,
        *extra,
    ]


def long_running_worker_args(name: str, *, loglevel: str = "INFO", extra: Sequence[str] = ()) -> list[str]:
    """The worker of the long-running singletons and the control tasks: a thread pool, so the
    singletons see the worker's shutdown; no work on games reaches it."""
    return [
        "worker",
        "-Q",
        ",".join(LONG_RUNNING_WORKER_QUEUES),
        "-P",
        "threads",
        "-c",
        str(LONG_RUNNING_THREADS),
        "-n",
        f"{name}@%h",
        "--loglevel",
        loglevel,
        *extra,
    ]


def beat_args(schedule_file: Path, *, loglevel: str = "INFO") -> list[str]:
    return ["beat", "-s", str(schedule_file), "--loglevel", loglevel]
