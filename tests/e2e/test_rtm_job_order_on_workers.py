"""Start/stop jobs ordered per game, never lost, never stuck — on real workers, beat and a private dockerd.

SPEC §5 "RTM: start/stop jobs": the jobs of one game take effect as if both
job streams were merged by entry id and applied one at a time; a job the
broker dropped is run again; a claim (and the record's mark) of a job that died
does not outlive its bound; no PostgreSQL transaction stays open across a
Docker call.  Slow Docker calls come from a registry stand-in on loopback that
keeps an image pull waiting (``tests/support/slow_registry.py``).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from functools import partial
from typing import cast

import docker
import pytest
import redis
from sqlalchemy import create_engine, text

from galaxy_tasks.adapters.docker.runtime import GAME_LABEL
from galaxy_tasks.testing.cluster import CeleryProcess, Cluster, wait_until
from tests.e2e.test_rtm_jobs_on_workers import JOB_BRIDGE_LEASES, start_rtm
from tests.support.lobby import Lobby
from tests.support.pipeline import Pipeline
from tests.support.slow_registry import SlowRegistry

pytestmark = pytest.mark.e2e

FAST_JOB_REPAIR = {
    "GALAXY_JOB_REPAIR_AFTER_SECONDS": "2",
    "GALAXY_JOB_REPAIR_INTERVAL_SECONDS": "1",
    "GALAXY_DOCKER_RETRY_SECONDS": "2",
    "GALAXY_JOB_CLAIM_SECONDS": "8",
}
"""Bounds a test can wait out: a lost turn is sent again after 2 s, a claim expires after 8 s."""


@pytest.fixture
def clean_docker(docker_client: docker.DockerClient) -> Iterator[docker.DockerClient]:
    yield docker_client
    for container in docker_client.containers.list(all=True, filters={"label": GAME_LABEL}):
        container.remove(force=True)


def queued_jobs(pipeline: Pipeline, game: str) -> int:
    with pipeline.engine.connect() as conn:
        return int(
            conn.execute(text("SELECT count(*) FROM rtmanager.job_queue WHERE game_id = :g"), {"g": game}).scalar_one()
        )


def claim_of(pipeline: Pipeline, game: str) -> str | None:
    with pipeline.engine.connect() as conn:
        row = conn.execute(text("SELECT claim_job_id FROM rtmanager.game_jobs WHERE game_id = :g"), {"g": game})
        found = row.one_or_none()
    return None if found is None else found.claim_job_id


def drop_broker_messages(pipeline: Pipeline, queue: str) -> int:
    """Delete every message of ``queue`` from the Redis broker (its lists, priority lists included)."""
    broker = redis.Redis.from_url(pipeline.env["GALAXY_BROKER_URL"])
    keys = [key for key in broker.scan_iter(match=f"{queue}*") if key.decode().split("\x06")[0] == queue]
    return int(broker.delete(*keys)) if keys else 0


def first_and_last(pipeline: Pipeline, stream: str) -> tuple[str, str]:
    entries = cast(list[tuple[str, dict[str, str]]], pipeline.r.xrange(stream))
    return entries[0][0], entries[-1][0]


def test_start_then_stop_of_twenty_games_with_the_start_bridge_held_off_end_stopped_with_one_result_each(
    pipeline: Pipeline, cluster: Cluster, docker_host: str, clean_docker: docker.DockerClient
) -> None:
    start_rtm(cluster, pipeline, docker_host)
    lobby = Lobby(pipeline, clean_docker)
    r = pipeline.r
    start_lease = JOB_BRIDGE_LEASES[0]
    r.set(start_lease, "test-holds-the-start-bridge", px=120_000)  # as an outage would hold it off
    time.sleep(1.0)  # the bridge renews before every read (blocking at most GALAXY_BRIDGE_BLOCK_MS)
    games = [f"order-{n}" for n in range(20)]
    last_stop = ""
    for game in games:
        lobby.start(game)
        last_stop = lobby.stop(game)
    wait_until(lambda: r.get("rtmanager:stream_offsets:stop_jobs") == last_stop, timeout=20, what="the stops handed on")
    time.sleep(2.0)
    early = {g: [(x["outcome"], x["error_code"]) for x in lobby.results(g)] for g in games if lobby.results(g)}
    assert early == {}, "a stop ran before its game's older start"
    assert all(queued_jobs(pipeline, g) == 1 for g in games)  # each game's stop waits in its queue
    r.delete(start_lease)  # let go: the supervisor starts the start bridge again
    for game in games:
        results = lobby.wait_results(game, 2, timeout=90)
        assert [(x["outcome"], x["error_code"]) for x in results] == [("success", ""), ("success", "")], game
        assert results[0]["container_id"] == results[1]["container_id"] != ""  # the stop stopped the start's
        assert lobby.record(game) == ("stopped", "")
    assert [c.name for c in clean_docker.containers.list(all=True, filters={"label": GAME_LABEL})] == []
    assert len(lobby.log_rows()) == 40

    for stream in ("runtime:start_jobs", "runtime:stop_jobs"):  # an operator replays both streams
        first = first_and_last(pipeline, stream)[0]
        done = pipeline.cli("replay", "--stream", stream, "--from", first)
        assert done.returncode == 0, done.stderr
    for stream, offset_key in (("runtime:start_jobs", "start_jobs"), ("runtime:stop_jobs", "stop_jobs")):
        key, last = f"rtmanager:stream_offsets:{offset_key}", first_and_last(pipeline, stream)[1]
        wait_until(partial(lambda k, e: r.get(k) == e, key, last), timeout=30, what=f"the replay of {stream}")
    time.sleep(2.0)
    for game in games:
        assert len(lobby.results(game)) == 2, game  # nothing answered twice
        assert lobby.record(game) == ("stopped", "")
        assert queued_jobs(pipeline, game) == 0
    assert clean_docker.containers.list(all=True, filters={"label": GAME_LABEL}) == []
    assert len(lobby.log_rows()) == 40


def test_a_start_whose_turn_the_broker_lost_is_answered_after_the_repair(
    pipeline: Pipeline, cluster: Cluster, docker_host: str, clean_docker: docker.DockerClient
) -> None:
    pool = start_rtm(cluster, pipeline, docker_host, **FAST_JOB_REPAIR)
    lobby = Lobby(pipeline, clean_docker)
    pool.popen.terminate()  # no worker takes the turn from the broker meanwhile
    pool.popen.wait(timeout=30)
    lobby.start("lost-turn")
    wait_until(lambda: queued_jobs(pipeline, "lost-turn") == 1, timeout=20, what="the start queued by its bridge")
    wait_until(lambda: drop_broker_messages(pipeline, "rtmanager.jobs") > 0, timeout=10, what="the turn in the broker")
    pool = cluster.pool_worker("pool-after", concurrency=2)
    (result,) = lobby.wait_results("lost-turn", 1, timeout=60)
    assert (result["outcome"], result["error_code"]) == ("success", "")
    (container,) = lobby.containers("lost-turn")
    assert container.id == result["container_id"]
    assert "job_turn_redispatched" in pool.log_text()
    assert pipeline.metric("galaxy_rtm_job_repairs_total", {"kind": "redispatched"}) >= 1
    time.sleep(2.0)
    assert len(lobby.results("lost-turn")) == 1


def lose_the_job_worker(cluster: Cluster, pipeline: Pipeline, pool: CeleryProcess) -> CeleryProcess:
    """``kill -9`` the job worker and drop what it had taken from the broker (no redelivery); a new one starts."""
    cluster.kill9(pool)
    broker = redis.Redis.from_url(pipeline.env["GALAXY_BROKER_URL"])
    broker.delete("unacked", "unacked_index")
    return cluster.pool_worker("pool-after", concurrency=2)


def test_a_job_worker_killed_mid_start_with_its_message_lost_does_not_leave_the_record_starting(
    pipeline: Pipeline, cluster: Cluster, docker_host: str, clean_docker: docker.DockerClient
) -> None:
    with SlowRegistry() as registry:
        pool = start_rtm(cluster, pipeline, docker_host, GALAXY_ENGINE_IMAGE_PULL="missing", **FAST_JOB_REPAIR)
        long_running = next(p for p in cluster.processes if p.name == "long-running")
        lobby = Lobby(pipeline, clean_docker)
        lobby.start("killed")
        (first,) = lobby.wait_results("killed", 1)
        # The listener is frozen while the container dies: the record still says running, so the
        # restart below marks it `starting` before it removes the dead container.
        os.kill(long_running.pid, signal.SIGSTOP)
        try:
            clean_docker.containers.get(first["container_id"]).kill()
            pipeline.send_tasks("rtmanager.start_game", [["killed", registry.image()]])  # an operator's call
            wait_until(lambda: lobby.record("killed") == ("starting", first["container_id"]), timeout=20, what="mark")
        finally:
            os.kill(long_running.pid, signal.SIGCONT)
        wait_until(lambda: registry.requests, timeout=20, what="the pull")  # the start hangs in its pull
        lose_the_job_worker(cluster, pipeline, pool)
        registry.release()  # from now on the registry answers at once: 404
        # Within the claim's bound (8 s) plus a repair round the mark is settled and the job answered.
        results = lobby.wait_results("killed", 2, timeout=60)
        assert lobby.record("killed") != ("starting", first["container_id"])
    assert (results[1]["outcome"], results[1]["error_code"]) == ("failure", "image_not_found")
    assert lobby.record("killed") == ("running", first["container_id"])  # back to its previous state
    assert claim_of(pipeline, "killed") is None
    assert pipeline.metric("galaxy_rtm_job_repairs_total", {"kind": "claim_reverted"}) >= 1
    time.sleep(2.0)
    assert len(lobby.results("killed")) == 2


def test_a_job_worker_killed_mid_stop_with_its_message_lost_does_not_leave_the_record_stopping(
    pipeline: Pipeline, cluster: Cluster, docker_host: str, clean_docker: docker.DockerClient
) -> None:
    pool = start_rtm(cluster, pipeline, docker_host, **FAST_JOB_REPAIR)
    lobby = Lobby(pipeline, clean_docker)
    lobby.start("stuck")
    (started,) = lobby.wait_results("stuck", 1)
    clean_docker.containers.get(started["container_id"]).pause()  # its stop takes the whole grace (5 s)
    lobby.stop("stuck")
    wait_until(lambda: lobby.record("stuck") == ("stopping", started["container_id"]), timeout=20, what="the mark")
    shown = json.loads(pipeline.cli("status", "--json").stdout)["jobs_in_transition"]
    assert [(row["game_id"], row["status"]) for row in shown] == [("stuck", "stopping")]
    assert shown[0]["job_id"].startswith("runtime:stop_jobs:")
    lose_the_job_worker(cluster, pipeline, pool)
    # Within the claim's bound (8 s) plus a repair round: settled from Docker, then the stop runs again.
    results = lobby.wait_results("stuck", 2, timeout=60)
    assert (results[1]["outcome"], results[1]["error_code"]) == ("success", "")
    assert lobby.record("stuck") == ("stopped", "")
    assert lobby.containers("stuck") == []
    assert claim_of(pipeline, "stuck") is None
    kinds = ("claim_reverted", "claim_finished")
    assert sum(pipeline.metric("galaxy_rtm_job_repairs_total", {"kind": k}) for k in kinds) >= 1


def test_a_migration_is_not_blocked_by_a_start_that_pulls_a_slow_image(
    pipeline: Pipeline, cluster: Cluster, docker_host: str, clean_docker: docker.DockerClient
) -> None:
    with SlowRegistry() as registry:
        start_rtm(cluster, pipeline, docker_host, GALAXY_ENGINE_IMAGE_PULL="missing")
        lobby = Lobby(pipeline, clean_docker)
        lobby.start("slow-pull", image=registry.image())
        wait_until(lambda: claim_of(pipeline, "slow-pull") is not None and registry.requests, timeout=20, what="pull")
        # What a migration of the jobs' tables takes: ACCESS EXCLUSIVE, which any open transaction
        # holding one of their rows would block.
        engine = create_engine(pipeline.database_url)
        try:
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '3s'"))
                for table in ("game_jobs", "job_queue", "runtime_records", "operation_log"):
                    conn.execute(text(f"LOCK TABLE rtmanager.{table} IN ACCESS EXCLUSIVE MODE"))
        finally:
            engine.dispose()
        started = time.monotonic()
        done = pipeline.cli("migrate", timeout=30)
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - started < 20
        assert lobby.results("slow-pull") == []  # the start was still pulling all along
        registry.release()
        (result,) = lobby.wait_results("slow-pull", 1)
    assert (result["outcome"], result["error_code"]) == ("failure", "image_not_found")
