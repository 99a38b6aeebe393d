"""The CLI's exit codes: a database never migrated is a message saying what to do and 2, not a traceback;
``status --check`` is 1 while something needs attention and 0 when nothing does; ``--version``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy import make_url

from galaxy_tasks.long_running import REGISTRY
from galaxy_tasks.testing.services import POSTGRES_ADMIN_URL, drop_database, fresh_database_url, run_admin_statement
from tests.support.pipeline import Pipeline


@pytest.fixture
def unmigrated(pipeline: Pipeline) -> Iterator[Pipeline]:
    """The test's Redis, and an empty database that ``galaxy-tasks migrate`` never touched."""
    database_url = fresh_database_url()
    run_admin_statement(POSTGRES_ADMIN_URL, f'CREATE DATABASE "{make_url(database_url).database}"')
    pipe = dataclasses.replace(pipeline, database_url=database_url)
    try:
        yield pipe
    finally:
        pipe.close()
        drop_database(database_url)


@pytest.mark.parametrize("command", [["status"], ["status", "--json"]])
def test_status_before_migrate_says_to_migrate_and_exits_2_without_a_traceback(
    unmigrated: Pipeline, command: list[str]
) -> None:
    done = unmigrated.cli(*command)

    assert done.returncode == 2, done.stderr
    assert "run `galaxy-tasks migrate`" in done.stderr
    assert "Traceback" not in done.stderr


def test_version_prints_the_installed_version(pipeline: Pipeline) -> None:
    done = pipeline.cli("--version")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("galaxy-tasks 0.")


def test_status_check_exits_1_naming_every_singleton_nobody_holds_and_0_once_all_are_held(pipeline: Pipeline) -> None:
    unheld = pipeline.cli("status", "--check")

    assert unheld.returncode == 1, unheld.stderr
    names = [singleton.name for singleton in REGISTRY]
    assert all(f"long-running {name}: nobody holds its lease" in unheld.stderr for name in names)
    for singleton in REGISTRY:
        pipeline.r.set(singleton.lease_key, "a-holder:1", px=60_000)

    held = pipeline.cli("status", "--check")

    assert held.returncode == 0, held.stderr
    assert "galaxy-tasks status:" not in held.stderr
    assert pipeline.cli("status").returncode == 0  # without --check: always 0
