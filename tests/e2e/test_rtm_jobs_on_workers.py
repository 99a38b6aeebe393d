"""Start and stop jobs through the job streams, their bridges and real celery processes on a private dockerd.

A pool worker (queue ``rtmanager.jobs`` among others), the long-running worker
(the job-stream bridges, the Docker events listener) and beat (supervisor,
outbox relays) run as subprocesses; jobs are appended to
``runtime:start_jobs`` / ``runtime:stop_jobs`` as the Lobby would, results
read from ``runtime:job_results``.  Every job must leave exactly one
``operation_log`` row and one result entry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import cast

import docker
import pytest
from sqlalchemy import text

from galaxy_tasks.adapters.docker.runtime import GAME_LABEL
from galaxy_tasks.testing.cluster import REPO, CeleryProcess, Cluster, wait_until
from galaxy_tasks.testing.engines import TEST_ENGINE_ENV
from tests.support.docker_engine import ENGINE_IMAGE, PrivateDockerd
from tests.support.lobby import Lobby
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.e2e

SLOW_SWEEPS = {
    "GALAXY_PROBE_INTERVAL_SECONDS": "60",
    "GALAXY_INSPECT_INTERVAL_SECONDS": "60",
    "GALAXY_RECONCILE_INTERVAL_SECONDS": "60",
}
JOB_BRIDGE_LEASES = ("rtmanager:stream_bridge:start_jobs:lease", "rtmanager:stream_bridge:stop_jobs:lease")


def start_rtm(cluster: Cluster, pipeline: Pipeline, docker_host: str, **extra: str) -> CeleryProcess:
    """The pool worker (returned), the long-running worker and beat, once the job bridges run."""
    cluster.env.update(TEST_ENGINE_ENV, **SLOW_SWEEPS, DOCKER_HOST=docker_host, **extra)
    pool = cluster.pool_worker("pool", concurrency=4)
    cluster.long_running_worker()
    cluster.beat()
    wait_until(
        lambda: all(pipeline.r.exists(key) for key in JOB_BRIDGE_LEASES), timeout=30, what="the job-stream bridges"
    )
    return pool


@pytest.fixture
def lobby(
    pipeline: Pipeline, cluster: Cluster, docker_host: str, docker_client: docker.DockerClient
) -> Iterator[Lobby]:
    start_rtm(cluster, pipeline, docker_host)
    yield Lobby(pipeline, docker_client)
    for container in docker_client.containers.list(all=True, filters={"label": GAME_LABEL}):
        container.remove(force=True)


def test_start_replay_unknown_image_stop_and_stop_again_through_the_job_streams(lobby: Lobby) -> None:
    lobby.start("j-1")
    (started,) = lobby.wait_results("j-1", 1)
    (container,) = lobby.containers("j-1")
    assert container.status == "running"
    assert started == {
        "game_id": "j-1",
        "outcome": "success",
        "container_id": container.id,
        "engine_endpoint": "http://127.0.0.1:8080/j-1",
        "error_code": "",
        "error_message": "",
    }
    assert lobby.record("j-1") == ("running", container.id)
    wait_until(lambda: "container_started" in lobby.health_kinds("j-1"), timeout=10, what="container_started")
    with lobby.pipeline.engine.connect() as conn:
        snapshot = conn.execute(
            text("SELECT status, source FROM rtmanager.health_snapshots WHERE game_id = 'j-1'")
        ).one()
    assert (snapshot.status, snapshot.source) == ("healthy", "docker_event")

    lobby.start("j-1")
    replay = lobby.wait_results("j-1", 2)[1]
    assert (replay["outcome"], replay["error_code"], replay["container_id"]) == (
        "success",
        "replay_no_op",
        container.id,
    )

    lobby.start("j-2", image="galaxy/no-such-engine:9")
    (missing,) = lobby.wait_results("j-2", 1)
    assert (missing["outcome"], missing["error_code"]) == ("failure", "image_not_found")
    assert "galaxy/no-such-engine:9" in missing["error_message"]
    assert lobby.containers("j-2") == []
    assert lobby.record("j-2") is None

    lobby.stop("j-1")
    stopped = lobby.wait_results("j-1", 3)[2]
    assert (stopped["outcome"], stopped["error_code"], stopped["container_id"]) == ("success", "", container.id)
    assert lobby.containers("j-1") == []
    assert lobby.record("j-1") == ("stopped", "")
    lobby.stop("j-1")
    again = lobby.wait_results("j-1", 4)[3]
    assert (again["error_code"], again["container_id"], again["engine_endpoint"]) == ("replay_no_op", "", "")

    # The stop's `destroy` reached the events listener: a container going on purpose is no loss.
    assert "container_disappeared" not in lobby.health_kinds("j-1")
    rows = lobby.log_rows()
    assert len(rows) == 5
    assert len({row["job_id"] for row in rows}) == 5
    assert all(row["source_entry_id"] for row in rows)


def test_malformed_job_entries_get_invalid_request_or_are_skipped_and_never_stall_the_stream(lobby: Lobby) -> None:
    r = lobby.pipeline.r
    r.xadd("runtime:start_jobs", {"game_id": "j-bad"})  # no image_ref
    r.xadd("runtime:start_jobs", {"image_ref": ENGINE_IMAGE})  # no game: nobody to tell
    r.xadd("runtime:start_jobs", {"game_id": "bad game id", "image_ref": ENGINE_IMAGE})
    r.xadd("runtime:stop_jobs", {"reason": "no game"})
    r.xadd("runtime:stop_jobs", {"game_id": "j-reason", "reason": "because"})  # not one of the SPEC's reasons
    lobby.start("j-after")
    (bad,) = lobby.wait_results("j-bad", 1)
    assert (bad["outcome"], bad["error_code"]) == ("failure", "invalid_request")
    assert "image_ref" in bad["error_message"]
    (spaces,) = lobby.wait_results("bad game id", 1)
    assert spaces["error_code"] == "invalid_request"
    (reason,) = lobby.wait_results("j-reason", 1)
    assert (reason["outcome"], reason["error_code"]) == ("failure", "invalid_request")
    assert "admin_request" in reason["error_message"]
    (after,) = lobby.wait_results("j-after", 1)
    assert after["outcome"] == "success"
    wait_until(lambda: r.get("rtmanager:stream_offsets:stop_jobs") is not None, timeout=10, what="the stop-jobs offset")
    entries = cast(list[tuple[str, dict[str, str]]], r.xrange("runtime:job_results"))
    assert len(entries) == 4  # the two entries without a game_id were skipped
    assert len(lobby.log_rows()) == 4


def test_job_entries_with_bytes_that_are_not_text_never_stop_the_job_streams(lobby: Lobby) -> None:
    """SPEC §5 "Bad input" for the job streams: the valid jobs after hostile entries get their results."""
    r = lobby.pipeline.r
    r.xadd("runtime:stop_jobs", {"game_id": "j-cut", "reason": b"fini\xe2\x82"})  # UTF-8 cut mid-character
    r.xadd("runtime:start_jobs", {"game_id": b"j-\xff", "image_ref": ENGINE_IMAGE})  # no readable game
    r.xadd("runtime:start_jobs", {"game_id": "j-nul\x00", "image_ref": ENGINE_IMAGE})  # NUL: not text
    r.xadd("runtime:start_jobs", {"game_id": "j-extra", "image_ref": ENGINE_IMAGE, b"\xfe": b"\xff"})  # ignored
    lobby.stop("j-stop-after")
    (cut,) = lobby.wait_results("j-cut", 1)
    assert (cut["outcome"], cut["error_code"]) == ("failure", "invalid_request")
    assert "reason is not UTF-8 text" in cut["error_message"]
    (extra,) = lobby.wait_results("j-extra", 1)
    assert (extra["outcome"], extra["error_code"]) == ("success", "")
    (after,) = lobby.wait_results("j-stop-after", 1)
    assert after["outcome"] == "success"
    assert lobby.results("j-nul\x00") == []
    assert {row["game_id"] for row in lobby.log_rows()} == {"j-cut", "j-extra", "j-stop-after"}
    skipped = lobby.pipeline.metric("galaxy_rtm_job_entries_skipped_total", {"stream": "runtime:start_jobs"})
    assert skipped == 2


def test_two_start_jobs_of_one_game_at_once_make_one_container(lobby: Lobby) -> None:
    lobby.start("j-twin")
    lobby.start("j-twin")
    results = lobby.wait_results("j-twin", 2)
    assert sorted(r["error_code"] for r in results) == ["", "replay_no_op"]
    assert len({r["container_id"] for r in results}) == 1
    assert len(lobby.containers("j-twin")) == 1


def test_start_game_and_stop_game_called_from_a_python_shell_return_the_job_result(lobby: Lobby) -> None:
    script = (
        "import json\n"
        "from galaxy_tasks.tasks.rtmanager_jobs import start_game, stop_game\n"
        f"started = start_game.delay('j-shell', {ENGINE_IMAGE!r}).get(timeout=60)\n"
        "stopped = stop_game.delay('j-shell', reason='admin_request').get(timeout=60)\n"
        "print(json.dumps([started, stopped]))\n"
    )
    env = {**os.environ, **lobby.pipeline.env}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    started, stopped = json.loads(done.stdout.strip().splitlines()[-1])
    assert (started["outcome"], started["error_code"], started["game_id"]) == ("success", "", "j-shell")
    assert started["job_id"].startswith("task:")
    assert (stopped["outcome"], stopped["container_id"]) == ("success", started["container_id"])
    assert [r["error_code"] for r in lobby.results("j-shell")] == ["", ""]


def test_docker_stopped_during_a_start_is_retried_and_the_job_succeeds_when_it_comes_back_in_time(
    pipeline: Pipeline, cluster: Cluster, own_dockerd: PrivateDockerd
) -> None:
    pool = start_rtm(cluster, pipeline, own_dockerd.host, GALAXY_DOCKER_RETRY_SECONDS="20")
    lobby = Lobby(pipeline, docker.DockerClient(base_url=own_dockerd.host, timeout=30))
    own_dockerd.stop()
    lobby.start("j-back")
    wait_until(lambda: "job_docker_unavailable_retrying" in pool.log_text(), timeout=20, what="the job to retry")
    assert lobby.results("j-back") == []
    own_dockerd.start()
    (result,) = lobby.wait_results("j-back", 1, timeout=60)
    assert (result["outcome"], result["error_code"]) == ("success", "")
    (container,) = lobby.containers("j-back")
    assert container.id == result["container_id"]
    assert container.status == "running"


def test_docker_stopped_for_longer_than_the_retry_window_fails_the_start_with_docker_unavailable(
    pipeline: Pipeline, cluster: Cluster, own_dockerd: PrivateDockerd
) -> None:
    start_rtm(cluster, pipeline, own_dockerd.host, GALAXY_DOCKER_RETRY_SECONDS="3")
    lobby = Lobby(pipeline, docker.DockerClient(base_url=own_dockerd.host, timeout=30))
    own_dockerd.stop()
    lobby.start("j-gone")
    (result,) = lobby.wait_results("j-gone", 1, timeout=60)
    assert (result["outcome"], result["error_code"]) == ("failure", "docker_unavailable")
    assert "GALAXY_DOCKER_RETRY_SECONDS" in result["error_message"]
    (row,) = lobby.log_rows()
    assert row["error_code"] == "docker_unavailable"
    assert row["duration_ms"] >= 3000
    own_dockerd.start()
    assert lobby.containers("j-gone") == []
