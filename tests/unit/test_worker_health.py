"""``galaxy-tasks healthcheck``'s verdict from the worker's files: alive while touched within the limit,
ready only between ``worker_ready`` and the start of the shutdown."""

from __future__ import annotations

import os
from pathlib import Path

from galaxy_tasks.worker_health import ALIVE, READY, check, touch


def test_a_fresh_heartbeat_is_alive_and_with_the_ready_file_ready(tmp_path: Path) -> None:
    touch(tmp_path / ALIVE)
    assert check(tmp_path, ready=False, max_age_seconds=30) is None
    assert "starting, or shutting down" in str(check(tmp_path, ready=True, max_age_seconds=30))
    touch(tmp_path / READY)
    assert check(tmp_path, ready=True, max_age_seconds=30) is None


def test_a_heartbeat_older_than_the_limit_is_a_stuck_or_frozen_worker(tmp_path: Path) -> None:
    touch(tmp_path / ALIVE)
    touch(tmp_path / READY)
    stamp = (tmp_path / ALIVE).stat().st_mtime
    os.utime(tmp_path / ALIVE, (stamp - 31, stamp - 31))

    problem = check(tmp_path, ready=True, max_age_seconds=30)

    assert problem is not None
    assert "stuck or frozen" in problem


def test_no_heartbeat_file_says_the_worker_has_not_started(tmp_path: Path) -> None:
    assert "has not started" in str(check(tmp_path / "nothing-here", ready=False, max_age_seconds=30))


def test_touch_replaces_the_file_whole_and_leaves_no_temporary_behind(tmp_path: Path) -> None:
    touch(tmp_path / "deep" / ALIVE)
    touch(tmp_path / "deep" / ALIVE)
    assert [p.name for p in (tmp_path / "deep").iterdir()] == [ALIVE]
    assert (tmp_path / "deep" / ALIVE).read_text().split()[0] == str(os.getpid())
