"""Fixtures of the adapter tests: the two engines galaxy_tasks builds per process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from galaxy_tasks.adapters.postgres.engine import build_autocommit_engine, build_engine
from tests.support.pipeline import Pipeline


@pytest.fixture
def engines(pipeline: Pipeline) -> Iterator[tuple[Engine, Engine]]:
    """(the hot-path autocommit engine, the plain engine), both on the test's database."""
    hot = build_autocommit_engine(pipeline.database_url, pool_size=2, connect_timeout=5)
    plain = build_engine(pipeline.database_url, pool_size=2, connect_timeout=5)
    yield hot, plain
    hot.dispose()
    plain.dispose()
