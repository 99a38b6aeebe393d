"""The start/stop job service on the private dockerd, real PostgreSQL and Redis (in-process)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from typing import Any

import redis
from sqlalchemy import text

from galaxy_tasks.adapters.docker.runtime import GAME_LABEL
from galaxy_tasks.adapters.postgres.outboxes import JOB_RESULT_OUTBOX_SPEC, health_events_outbox
from galaxy_tasks.adapters.postgres.stream_outbox import PostgresStreamOutbox
from galaxy_tasks.domain.rtmanager.job_order import QueuedJob
from galaxy_tasks.domain.rtmanager.jobs import ContainerView, EngineIsolation, JobKind, StartJob, StopJob
from galaxy_tasks.ports.jobs import EngineSpec
from galaxy_tasks.service.jobs import JobContext, JobRun, answer_job, run_start_job, run_stop_job
from galaxy_tasks.service.outbox import relay
from tests.support.docker_engine import ENGINE_IMAGE
from tests.support.job_rig import JobRig

DEAD_REDIS = "redis://127.0.0.1:1/0"
RESULT_FIELDS = {"game_id", "outcome", "container_id", "engine_endpoint", "error_code", "error_message"}


def start(jobs: JobRig, game: str, image: str = ENGINE_IMAGE, job_id: str | None = None) -> JobRun:
    return run_start_job(jobs.ctx, StartJob(game, image), job_id=job_id or f"test:{uuid.uuid4()}")


def invalid(jobs: JobRig, kind: JobKind, game: str, message: str, *, job_id: str, entry_id: str | None) -> JobRun:
    key = jobs.ctx.streams.now_key()  # called now: after the game's earlier jobs
    return answer_job(jobs.ctx, QueuedJob(job_id, game, kind, key, invalid=message, source_entry_id=entry_id))


def stop(jobs: JobRig, game: str, job_id: str | None = None) -> JobRun:
    return run_stop_job(jobs.ctx, StopJob(game, "admin_request"), job_id=job_id or f"test:{uuid.uuid4()}")


def test_a_start_runs_a_named_labelled_container_records_it_and_publishes_started_and_one_result(
    jobs: JobRig,
) -> None:
    run = start(jobs, "g-start")
    (container,) = jobs.containers("g-start")
    assert container.status == "running"
    assert container.name == "galaxy-game-g-start"
    assert container.labels[GAME_LABEL] == "g-start"
    host_config = container.attrs["HostConfig"]
    assert host_config["Memory"] == 64 * 1024 * 1024
    assert host_config["NanoCpus"] == 500_000_000
    assert host_config["NetworkMode"] == "host"
    assert host_config["CapDrop"] == ["ALL"]
    assert not host_config["CapAdd"]
    assert host_config["SecurityOpt"] == ["no-new-privileges:true"]
    assert host_config["PidsLimit"] == EngineIsolation().pids_limit
    assert not host_config["ReadonlyRootfs"]
    endpoint = "http://127.0.0.1:8080/g-start"
    assert run.result.as_dict() == {
        "game_id": "g-start",
        "outcome": "success",
        "container_id": container.id,
        "engine_endpoint": endpoint,
        "error_code": "",
        "error_message": "",
    }
    assert jobs.record("g-start") == ("running", container.id, ENGINE_IMAGE, endpoint)
    assert jobs.health_events("g-start") == [("container_started", {"image_ref": ENGINE_IMAGE})]
    assert jobs.snapshot("g-start") == ("healthy", "docker_event")
    (result,) = jobs.results("g-start")
    assert set(result) == RESULT_FIELDS
    assert result["container_id"] == container.id
    (row,) = jobs.operation_log("g-start")
    assert (row["operation"], row["outcome"], row["error_code"], row["container_id"]) == (
        "start",
        "success",
        "",
        container.id,
    )
    assert row["finished_at"] >= row["started_at"]
    assert row["duration_ms"] >= 0


def test_starting_a_running_game_again_is_a_replay_with_the_same_container(jobs: JobRig) -> None:
    first = start(jobs, "g-replay")
    again = start(jobs, "g-replay")
    assert again.result.error_code == "replay_no_op"
    assert again.result.outcome == "success"
    assert again.result.container_id == first.result.container_id
    assert again.result.engine_endpoint == first.result.engine_endpoint
    assert len(jobs.containers("g-replay")) == 1
    assert [kind for kind, _ in jobs.health_events("g-replay")] == ["container_started"]
    assert [r["error_code"] for r in jobs.results("g-replay")] == ["", "replay_no_op"]
    assert len(jobs.operation_log("g-replay")) == 2


def confined(jobs: JobRig, **isolation: Any) -> JobContext:
    settings = replace(jobs.ctx.settings, isolation=replace(jobs.ctx.settings.isolation, **isolation))
    return replace(jobs.ctx, settings=settings)


def test_an_engine_that_forks_without_end_is_held_by_the_pids_limit(jobs: JobRig) -> None:
    limit = 24
    run = run_start_job(confined(jobs, pids_limit=limit), StartJob("g-forks", ENGINE_IMAGE), job_id="test:forks")
    container = jobs.client.containers.get(run.result.container_id)
    # Start sleepers until fork fails; the shell reports each failure and goes on trying.
    bomb = "i=0; while [ $i -lt 200 ]; do sleep 30 >/dev/null 2>&1 & i=$((i+1)); done; echo spawned"
    output = container.exec_run(["sh", "-c", bomb]).output.decode()
    assert "can't fork" in output or "Resource temporarily unavailable" in output, output
    processes = container.top()["Processes"]
    assert len(processes) <= limit
    container.reload()
    assert container.status == "running"  # the engine itself lives on; only the excess was refused
    assert container.attrs["HostConfig"]["PidsLimit"] == limit


def test_a_read_only_engine_running_as_another_user_gets_a_writable_tmp_and_capabilities_given_back(
    jobs: JobRig,
) -> None:
    ctx = confined(jobs, read_only_rootfs=True, user="65534:65534", cap_add=("NET_BIND_SERVICE",))
    run = run_start_job(ctx, StartJob("g-readonly", ENGINE_IMAGE), job_id="test:readonly")
    assert run.result.outcome == "success", run.result
    container = jobs.client.containers.get(run.result.container_id)
    assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert "/tmp" in container.attrs["HostConfig"]["Tmpfs"]
    assert container.attrs["HostConfig"]["CapAdd"] == ["NET_BIND_SERVICE"]
    assert container.attrs["Config"]["User"] == "65534:65534"
    assert container.exec_run(["id", "-u"]).output.decode().strip() == "65534"
    as_root = container.exec_run(["sh", "-c", "echo x > /www/x"], user="0")
    assert "Read-only file system" in as_root.output.decode(), as_root
    assert container.exec_run(["sh", "-c", "echo x > /tmp/x && cat /tmp/x"]).output.decode().strip() == "x"
    container.reload()
    assert container.status == "running"


def test_a_start_with_another_image_on_a_running_game_is_a_conflict_and_touches_nothing(jobs: JobRig) -> None:
    other = "galaxy/engine-upgrade:2"
    repository, tag = other.split(":")
    jobs.client.images.get(ENGINE_IMAGE).tag(repository, tag)
    first = start(jobs, "g-upgrade")
    conflict = start(jobs, "g-upgrade", image=other)
    assert (conflict.result.outcome, conflict.result.error_code) == ("failure", "conflict")
    assert ENGINE_IMAGE in conflict.result.error_message
    assert other in conflict.result.error_message
    (container,) = jobs.containers("g-upgrade")
    assert container.id == first.result.container_id
    assert container.status == "running"
    assert jobs.record("g-upgrade") == ("running", container.id, ENGINE_IMAGE, first.result.engine_endpoint)
    assert [kind for kind, _ in jobs.health_events("g-upgrade")] == ["container_started"]
    assert [r["error_code"] for r in jobs.results("g-upgrade")] == ["", "conflict"]
    stop(jobs, "g-upgrade")  # an upgrade is a stop, then a start
    upgraded = start(jobs, "g-upgrade", image=other)
    assert (upgraded.result.outcome, upgraded.result.error_code) == ("success", "")
    (container,) = jobs.containers("g-upgrade")
    assert container.attrs["Config"]["Image"] == other


def test_a_start_whose_container_died_is_a_real_restart_not_a_replay(jobs: JobRig) -> None:
    first = start(jobs, "g-dead")
    jobs.client.containers.get(first.result.container_id).kill()
    again = start(jobs, "g-dead")
    assert again.result.error_code == ""
    assert again.result.outcome == "success"
    assert again.result.container_id != first.result.container_id
    (container,) = jobs.containers("g-dead")
    assert container.id == again.result.container_id
    assert container.status == "running"
    assert jobs.record("g-dead") == ("running", container.id, ENGINE_IMAGE, again.result.engine_endpoint)
    assert [kind for kind, _ in jobs.health_events("g-dead")] == ["container_started", "container_started"]


def test_an_unknown_image_fails_with_image_not_found_and_leaves_nothing_behind(jobs: JobRig) -> None:
    run = start(jobs, "g-noimage", image="galaxy/no-such-engine:1")
    assert run.result.outcome == "failure"
    assert run.result.error_code == "image_not_found"
    assert "galaxy/no-such-engine:1" in run.result.error_message
    assert jobs.containers("g-noimage") == []
    assert jobs.record("g-noimage") is None
    assert jobs.health_events("g-noimage") == []
    (result,) = jobs.results("g-noimage")
    assert result["error_code"] == "image_not_found"
    assert result["container_id"] == ""
    assert [r["outcome"] for r in jobs.operation_log("g-noimage")] == ["failure"]


def test_an_engine_that_cannot_start_fails_with_container_start_failed_and_leaves_nothing_behind(
    jobs: JobRig,
) -> None:
    broken = replace(jobs.ctx, settings=replace(jobs.ctx.settings, network="no-such-network"))
    run = run_start_job(broken, StartJob("g-broken", ENGINE_IMAGE), job_id="test:broken")
    assert run.result.error_code == "container_start_failed"
    assert "no-such-network" in run.result.error_message
    assert "GALAXY_ENGINE_NETWORK" in run.result.error_message
    assert jobs.containers("g-broken") == []
    assert jobs.record("g-broken") is None


def test_a_stop_removes_the_container_records_stopped_and_a_second_stop_is_a_replay(jobs: JobRig) -> None:
    started = start(jobs, "g-stop")
    stopped = stop(jobs, "g-stop")
    assert stopped.result.as_dict() == {
        "game_id": "g-stop",
        "outcome": "success",
        "container_id": started.result.container_id,
        "engine_endpoint": started.result.engine_endpoint,
        "error_code": "",
        "error_message": "",
    }
    assert jobs.containers("g-stop") == []
    status, container_id, image, _ = jobs.record("g-stop") or ("", "", "", "")
    assert (status, container_id, image) == ("stopped", "", ENGINE_IMAGE)
    again = stop(jobs, "g-stop")
    assert again.result.as_dict() == {
        "game_id": "g-stop",
        "outcome": "success",
        "container_id": "",
        "engine_endpoint": "",
        "error_code": "replay_no_op",
        "error_message": "",
    }
    log = jobs.operation_log("g-stop")
    assert [(r["operation"], r["error_code"], r["reason"]) for r in log] == [
        ("start", "", ""),
        ("stop", "", "admin_request"),
        ("stop", "replay_no_op", "admin_request"),
    ]
    assert len(jobs.results("g-stop")) == 3


def test_stopping_an_unknown_game_is_a_replay_with_an_empty_container(jobs: JobRig) -> None:
    run = stop(jobs, "g-never-started")
    assert (run.result.outcome, run.result.error_code, run.result.container_id) == ("success", "replay_no_op", "")
    assert jobs.record("g-never-started") is None
    assert len(jobs.operation_log("g-never-started")) == 1


def test_two_starts_of_one_game_at_once_make_one_container(jobs: JobRig) -> None:
    stop(jobs, "g-race")  # an earlier job of the game: its hold row exists, the row lock alone must serialise
    runs: list[JobRun] = []
    barrier = threading.Barrier(2)

    def go() -> None:
        barrier.wait()
        runs.append(start(jobs, "g-race"))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(jobs.containers("g-race")) == 1
    assert sorted(r.result.error_code for r in runs) == ["", "replay_no_op"]
    assert len({r.result.container_id for r in runs}) == 1


def test_a_job_run_twice_does_its_work_and_publishes_its_result_once(jobs: JobRig) -> None:
    first = start(jobs, "g-twice", job_id="runtime:start_jobs:1-0")
    second = start(jobs, "g-twice", job_id="runtime:start_jobs:1-0")
    assert second.already_done
    assert second.result == first.result
    assert len(jobs.operation_log("g-twice")) == 1
    assert len(jobs.results("g-twice")) == 1
    assert len(jobs.health_events("g-twice")) == 1


def test_an_unreachable_docker_is_retried_for_the_window_then_docker_unavailable(jobs: JobRig) -> None:
    ctx = jobs.with_docker_at("unix:///tmp/galaxy-no-docker-here.sock", retry_seconds=1.5)
    run = run_start_job(ctx, StartJob("g-nodocker", ENGINE_IMAGE), job_id="test:nodocker")
    assert run.result.error_code == "docker_unavailable"
    assert "GALAXY_DOCKER_RETRY_SECONDS" in run.result.error_message
    (row,) = jobs.operation_log("g-nodocker")
    assert row["error_code"] == "docker_unavailable"
    assert row["duration_ms"] >= 1500
    assert [r["error_code"] for r in jobs.results("g-nodocker")] == ["docker_unavailable"]


def test_a_failed_restart_puts_back_the_record_it_marked_for_the_reconciler(jobs: JobRig) -> None:
    first = start(jobs, "g-restore")
    jobs.client.containers.get(first.result.container_id).kill()
    run = start(jobs, "g-restore", image="galaxy/no-such-engine:2")
    assert run.result.error_code == "image_not_found"
    restored = ("running", first.result.container_id, ENGINE_IMAGE, first.result.engine_endpoint)
    assert jobs.record("g-restore") == restored


def test_a_malformed_job_with_a_game_is_one_invalid_request_result(jobs: JobRig) -> None:
    stop(jobs, "g-bad")  # a game with job history: its invalid jobs are answered in its order
    run = invalid(jobs, JobKind.START, "g-bad", "image_ref is missing or empty", job_id="x:1", entry_id="1-0")
    assert (run.result.outcome, run.result.error_code) == ("failure", "invalid_request")
    (_, result) = jobs.results("g-bad")
    assert result["error_message"] == "image_ref is missing or empty"
    (_, row) = jobs.operation_log("g-bad")
    assert (row["operation"], row["source_entry_id"]) == ("start", "1-0")


def test_an_invalid_job_of_a_game_without_history_leaves_no_game_state_and_is_answered_once(jobs: JobRig) -> None:
    for _ in range(2):  # a redelivery: nothing twice
        invalid(jobs, JobKind.STOP, "x_junk.1", "breaks the rule", job_id="x:2", entry_id="2-0")
    (result,) = jobs.results("x_junk.1")
    assert (result["outcome"], result["error_code"]) == ("failure", "invalid_request")
    assert len(jobs.operation_log("x_junk.1")) == 1
    with jobs.pipeline.engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM rtmanager.game_jobs WHERE game_id = 'x_junk.1'")).scalar_one()
    assert rows == 0, "no per-game row for a game nobody knows"


def test_an_invalid_job_of_a_game_with_history_comes_in_its_sequence_of_results(jobs: JobRig) -> None:
    stop(jobs, "g-known")  # a replay: the game now has job history
    invalid(jobs, JobKind.START, "g-known", "image_ref is missing", job_id="x:3", entry_id=None)
    assert [r["error_code"] for r in jobs.results("g-known")] == ["replay_no_op", "invalid_request"]


class StatusDuringDocker:
    """Real engine containers, noting the game's record status (another connection) as Docker removes one."""

    def __init__(self, jobs: JobRig) -> None:
        self._jobs = jobs
        self._engines = jobs.ctx.engines
        self.seen: list[str] = []

    def _note(self, game_id: str) -> None:
        record = self._jobs.record(game_id)
        self.seen.append(record[0] if record else "")

    def find(self, name: str) -> ContainerView | None:
        return self._engines.find(name)

    def replace(self, spec: EngineSpec) -> str:
        self._note(spec.game_id)
        return self._engines.replace(spec)

    def stop_and_remove(self, container_id: str, timeout_seconds: float) -> None:
        game_id = self._jobs.client.containers.get(container_id).labels[GAME_LABEL]
        self._note(game_id)
        self._engines.stop_and_remove(container_id, timeout_seconds)


def test_while_a_job_removes_a_running_games_container_its_record_already_says_so_to_the_listener(
    jobs: JobRig,
) -> None:
    """The events listener's and the reconciler's loss CAS want `running`: they must see the job's mark."""
    first = start(jobs, "g-mark")
    spy = StatusDuringDocker(jobs)
    ctx = replace(jobs.ctx, engines=spy)
    jobs.client.containers.get(first.result.container_id).kill()
    run_start_job(ctx, StartJob("g-mark", ENGINE_IMAGE), job_id="test:restart")  # a restart removes the dead one
    run_stop_job(ctx, StopJob("g-mark"), job_id="test:stop")
    assert spy.seen == ["starting", "stopping"]
    assert jobs.record("g-mark")[0] == "stopped"  # type: ignore[index]


def test_with_redis_down_the_job_commits_and_the_relay_appends_its_result_exactly_once(jobs: JobRig) -> None:
    dead = redis.Redis.from_url(DEAD_REDIS, decode_responses=True, socket_timeout=1, socket_connect_timeout=1)
    engine = jobs.pipeline.engine
    ctx = replace(
        jobs.ctx,
        results_outbox=PostgresStreamOutbox(engine, dead, DEAD_REDIS, JOB_RESULT_OUTBOX_SPEC),
        health_outbox=PostgresStreamOutbox(engine, dead, DEAD_REDIS, health_events_outbox(0)),
    )
    run = run_start_job(ctx, StartJob("g-noredis", ENGINE_IMAGE), job_id="test:noredis")
    assert run.result.outcome == "success"
    assert len(jobs.operation_log("g-noredis")) == 1
    assert jobs.results("g-noredis") == []
    live = jobs.ctx.results_outbox
    assert live.backlog() == 1
    assert relay(live, batch_games=10, time_budget_seconds=5) == 1
    assert relay(live, batch_games=10, time_budget_seconds=5) == 0
    (result,) = jobs.results("g-noredis")
    assert result["container_id"] == run.result.container_id
    assert live.backlog() == 0


def test_a_job_whose_values_the_database_refuses_ends_in_one_invalid_request_result_not_in_none(
    jobs: JobRig,
) -> None:
    with jobs.pipeline.engine.begin() as conn:  # PostgreSQL refusing what this job would write (SQLSTATE 23514)
        conn.execute(
            text(
                "ALTER TABLE rtmanager.operation_log ADD CONSTRAINT refuse_g_refused "
                "CHECK (game_id <> 'g-refused' OR error_code <> 'replay_no_op')"
            )
        )
    for _ in range(2):  # a redelivery: nothing twice
        run = run_stop_job(jobs.ctx, StopJob("g-refused", "finished"), job_id="x:4", source_entry_id="4-0")
    (result,) = jobs.results("g-refused")
    assert (result["outcome"], result["error_code"]) == ("failure", "invalid_request")
    assert result["error_message"] == "refused by the database: SQLSTATE 23514"
    assert run.result.error_code == "invalid_request"
    with jobs.pipeline.engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM rtmanager.game_jobs WHERE game_id = 'g-refused'")).scalar_one()
    assert rows == 0, "the refused transaction left nothing of the game behind"
