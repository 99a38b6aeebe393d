"""``galaxy-tasks migrate`` on several hosts at once: one at a time under the migration lock, each waiting
(bounded, logged) for the one before, and a new database created by whichever gets there first."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from galaxy_tasks.contract import MIGRATION_LOCK
from galaxy_tasks.testing.cluster import REPO
from galaxy_tasks.testing.services import drop_database, fresh_database_url
from tests.support.pipeline import Pipeline

GALAXY_TASKS = str(Path(sys.executable).with_name("galaxy-tasks"))
HEADS = "SELECT count(*), min(version_num) FROM public.alembic_version"


def migrate_env(pipeline: Pipeline, database_url: str, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GALAXY_")}
    return env | pipeline.env | {"GALAXY_DATABASE_URL": database_url} | more


def start_migrate(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [GALAXY_TASKS, "migrate"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def migrate_now(pipeline: Pipeline, database_url: str) -> None:
    done = subprocess.run([GALAXY_TASKS, "migrate"], cwd=REPO, env=migrate_env(pipeline, database_url), check=False)
    assert done.returncode == 0


@pytest.fixture
def new_database() -> Iterator[str]:
    url = fresh_database_url()
    try:
        yield url
    finally:
        drop_database(url)


def hold_migration_lock(database_url: str) -> tuple[threading.Event, threading.Event, threading.Thread]:
    """A session (another host's migrate, as far as the lock goes) holding the lock until ``release`` is set."""
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        engine = create_engine(database_url)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:a, :b)"), {"a": MIGRATION_LOCK[0], "b": MIGRATION_LOCK[1]})
                conn.commit()
                held.set()
                release.wait(120)
        finally:
            engine.dispose()

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    assert held.wait(30)
    return held, release, thread


def test_three_hosts_migrating_a_new_database_at_once_all_succeed_and_leave_one_revision(
    pipeline: Pipeline, new_database: str
) -> None:
    env = migrate_env(pipeline, new_database)
    runs = [start_migrate(env) for _ in range(3)]
    outcomes = [(run.wait(timeout=180), run.communicate()[1]) for run in runs]

    assert [code for code, _ in outcomes] == [0, 0, 0], [err[-2000:] for _, err in outcomes]
    engine = create_engine(new_database)
    try:
        with engine.connect() as conn:
            count, revision = conn.execute(text(HEADS)).one()
    finally:
        engine.dispose()
    with pipeline.engine.connect() as conn:
        expected = conn.execute(text(HEADS)).one()[1]
    assert (count, revision) == (1, expected)


@dataclass
class HeldLock:
    database_url: str
    release: threading.Event
    holder: threading.Thread

    def let_go(self) -> None:
        self.release.set()
        self.holder.join(30)


@pytest.fixture
def held_lock(pipeline: Pipeline, new_database: str) -> Iterator[HeldLock]:
    """A migrated database whose migration lock another session (another host's migrate) holds."""
    migrate_now(pipeline, new_database)
    _, release, holder = hold_migration_lock(new_database)
    held = HeldLock(new_database, release, holder)
    try:
        yield held
    finally:
        held.let_go()


def test_migrate_waits_while_another_holds_the_lock_and_logs_the_holder(
    pipeline: Pipeline, held_lock: HeldLock
) -> None:
    started = time.monotonic()
    run = start_migrate(migrate_env(pipeline, held_lock.database_url, GALAXY_MIGRATE_LOCK_WAIT_SECONDS="60"))
    time.sleep(2.0)
    still_waiting = run.poll() is None
    held_lock.let_go()
    code = run.wait(timeout=60)
    _, stderr = run.communicate()

    assert still_waiting
    assert code == 0, stderr[-2000:]
    assert time.monotonic() - started >= 2.0
    assert "migration_waiting_for_lock" in stderr


def test_migrate_gives_up_with_exit_3_and_says_why_when_the_lock_stays_held(
    pipeline: Pipeline, held_lock: HeldLock
) -> None:
    done = subprocess.run(
        [GALAXY_TASKS, "migrate"],
        cwd=REPO,
        env=migrate_env(pipeline, held_lock.database_url, GALAXY_MIGRATE_LOCK_WAIT_SECONDS="1"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 3, done.stderr[-2000:]
    assert "still holds the migration lock" in done.stderr
    assert "Traceback" not in done.stderr
