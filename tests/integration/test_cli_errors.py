"""The CLI on a database that was never migrated: a message that says what to do and exit code 2, not a
traceback; and ``--version``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy import make_url

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
