"""The test-only services around :mod:`galaxy_tasks.testing.services`: backups, a private Redis, RabbitMQ vhosts.

A test that needs a service fails with a message naming the URL and the
command that starts it; it never skips.  Reaching PostgreSQL and Redis,
fresh and dropped databases live in the package (``bench/`` needs them too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from sqlalchemy import make_url

from galaxy_tasks.testing.services import POSTGRES_ADMIN_URL, drop_database, free_loopback_port, run_admin_statement

REDIS_URL = os.environ.get("GALAXY_TEST_REDIS_URL", "")
"""A Redis the tests may flush; empty (the default) means a private ``redis-server`` per test session."""


def _libpq_url(database_url: str) -> str:
    """The URL as ``pg_dump`` and ``pg_restore`` take it (no SQLAlchemy driver name)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def dump_database(database_url: str, dump_file: Path) -> None:
    """``pg_dump`` of the whole database (custom format), as a nightly backup takes it."""
    subprocess.run(
        ["pg_dump", "--format=custom", f"--file={dump_file}", _libpq_url(database_url)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def restore_database(database_url: str, dump_file: Path, admin_url: str = POSTGRES_ADMIN_URL) -> None:
    """Drop the database and restore it from ``dump_file``, as an operator restores a backup."""
    drop_database(database_url, admin_url)
    run_admin_statement(admin_url, f'CREATE DATABASE "{make_url(database_url).database}"')
    subprocess.run(
        ["pg_restore", "--exit-on-error", f"--dbname={_libpq_url(database_url)}", str(dump_file)],
        check=True,
        capture_output=True,
        timeout=120,
    )


@contextmanager
def ephemeral_redis(work_dir: Path) -> Iterator[str]:
    """A private, memory-only ``redis-server`` on a free loopback port, ended by pid afterwards.

    Integration tests flush their Redis freely; a private server keeps them from
    trampling anyone else's data on the shared one (and runs beside them).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is required; install it with `bash scripts/services.sh`")
    port = free_loopback_port()
    work_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(work_dir),
            "--logfile",
            str(work_dir / "redis.log"),
        ],
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(url, socket_timeout=1).ping()
                break
            except redis.exceptions.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private redis-server did not start (see {work_dir / 'redis.log'})") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


RABBITMQ_URL = os.environ.get("GALAXY_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of this test alone (its queues start empty); its broker URL.

    Made and removed with ``rabbitmqctl`` on this machine; fails loudly when
    RabbitMQ does not answer (``bash scripts/test-tools.sh`` starts it).
    """
    vhost = f"galaxy_test_{uuid.uuid4().hex[:10]}"

    def ctl(*args: str) -> None:
        done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed (is RabbitMQ running?): {done.stderr[-1000:]}")

    ctl("add_vhost", vhost)
    try:
        ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"{RABBITMQ_URL}/{vhost}"
    finally:
        ctl("delete_vhost", vhost)
