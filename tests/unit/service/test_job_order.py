"""The job ladder on the shipped fakes: per-game order, claims, waiting, redeliveries, conflicts, repairs.

Every test drives the real services (``drain_game``, ``run_job_now``,
``hand_on_jobs``, ``repair_jobs``) over :mod:`galaxy_tasks.testing.jobs` and
asserts the exact results, records and Docker calls: what is answered, in
which order, and what was (not) touched.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from galaxy_tasks.domain.errors import BackendUnavailable, PostgresUnavailable, ValueRefused
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.domain.rtmanager.job_order import QueuedJob, superseded_result
from galaxy_tasks.domain.rtmanager.jobs import (
    ContainerView,
    InvalidJob,
    JobErrorCode,
    JobKind,
    JobResult,
    RecordStatus,
    RecordView,
    StartJob,
    container_name,
    decode_stop_job,
    start_conflict,
)
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.ports.jobs import Claim
from galaxy_tasks.service.job_handoff import hand_on_jobs
from galaxy_tasks.service.job_repair import repair_jobs
from galaxy_tasks.service.jobs import (
    OLDER_ENTRIES_SCAN_LIMIT,
    JobContext,
    JobRun,
    NotAnswered,
    drain_game,
    run_job_now,
    run_start_job,
)
from galaxy_tasks.testing.jobs import (
    TEST_ENGINE_SETTINGS,
    FakeEngineContainers,
    FakeJobQueue,
    FakeJobStreams,
    FakeStreamOutbox,
    job_context,
)

G = "game-1"
NAME = container_name(G)
ENDPOINT = "http://game-1:8080"
IMAGE = "galaxy/engine:1"
IMAGE_2 = "galaxy/engine:2"
START_STREAM = "runtime:start_jobs"
STOP_STREAM = "runtime:stop_jobs"
CLAIM_SECONDS = 300.0
DEAD_ID = "dead" + "0" * 60


def cid(n: int) -> str:
    """The id of the ``n``-th container the fake Docker creates."""
    return f"{n:04d}" + "e" * 60


def start_job(ms: int, game_id: str = G, image_ref: str = IMAGE) -> QueuedJob:
    entry = f"{ms}-0"
    return QueuedJob(
        f"{START_STREAM}:{entry}", game_id, JobKind.START, StreamId(ms, 0), image_ref=image_ref, source_entry_id=entry
    )


def stop_job(ms: int, game_id: str = G) -> QueuedJob:
    entry = f"{ms}-0"
    return QueuedJob(f"{STOP_STREAM}:{entry}", game_id, JobKind.STOP, StreamId(ms, 0), source_entry_id=entry)


class Rig:
    def __init__(self, *, docker_host: str = "") -> None:
        self.queue = FakeJobQueue()
        self.streams = FakeJobStreams()
        self.engines = FakeEngineContainers()
        self.results = FakeStreamOutbox()
        self.health = FakeStreamOutbox()
        settings = replace(TEST_ENGINE_SETTINGS, docker_host=docker_host)
        self.ctx: JobContext = job_context(
            self.queue,
            self.streams,
            self.engines,
            results_outbox=self.results,
            health_outbox=self.health,
            settings=settings,
            claim_seconds=CLAIM_SECONDS,
        )
        self.turns: list[str] = []

    def drain(self, game_id: str = G) -> tuple[str, str, list[JobRun]]:
        report = drain_game(self.ctx, game_id)
        return report.state, report.detail, report.runs

    def repair(self, *, repair_after_seconds: float = 3600.0, docker_host: str = "") -> dict[str, object]:
        report = repair_jobs(
            self.queue,
            self.engines,
            self.turns.append,
            claim_seconds=CLAIM_SECONDS,
            repair_after_seconds=repair_after_seconds,
            endpoint_template=TEST_ENGINE_SETTINGS.endpoint_template,
            docker_host=docker_host,
        )
        return report.as_dict()

    def died_holding(self, game_id: str = G) -> Claim:
        """A worker claims the game's next job, then dies (nothing else of it ever runs)."""
        claim = self.queue.claim_next(game_id, bound_seconds=CLAIM_SECONDS)
        assert isinstance(claim, Claim)
        return claim


def running(container_id: str, image_ref: str = IMAGE) -> RecordView:
    return RecordView(RecordStatus.RUNNING.value, container_id, image_ref, ENDPOINT)


# --------------------------------------------------------------------------- order


def test_jobs_queued_out_of_order_run_lowest_order_key_first() -> None:
    rig = Rig()
    stop, start = stop_job(2000), start_job(1000)
    assert rig.queue.enqueue([stop]) == 1
    assert rig.queue.enqueue([start]) == 1

    state, _, runs = rig.drain()

    started = JobResult.success(G, cid(1), ENDPOINT)
    stopped = JobResult.success(G, cid(1), ENDPOINT)
    assert state == "idle"
    assert runs == [JobRun(start.job_id, started), JobRun(stop.job_id, stopped)]
    assert rig.results.entries == [started.to_fields(), stopped.to_fields()]
    assert [(e.game_id, e.seq) for e in rig.results.published] == [(G, 1), (G, 2)]
    assert rig.results.published[1].prev_uid == rig.results.published[0].uid != ""
    assert [f.job_id for f in rig.queue.finished] == [start.job_id, stop.job_id]
    assert rig.engines.calls == [("find", NAME), ("replace", NAME), ("find", NAME), ("stop_and_remove", cid(1))]
    assert rig.engines.containers == {}
    assert rig.queue.records[G] == RecordView(RecordStatus.STOPPED.value, "", IMAGE, ENDPOINT)
    assert rig.queue.queued(G) == []
    assert rig.queue.applied(G).key == StreamId(2000, 0)
    assert rig.queue.claim_of(G)[0] is None
    assert [(e["event_type"], e["container_id"]) for e in rig.health.entries] == [("container_started", cid(1))]


def test_a_job_older_than_the_applied_one_is_answered_superseded_logged_and_never_touches_docker() -> None:
    rig = Rig()
    rig.queue.enqueue([start_job(5000)])
    assert rig.drain()[2] == [JobRun(start_job(5000).job_id, JobResult.success(G, cid(1), ENDPOINT))]
    calls_before = list(rig.engines.calls)

    late = stop_job(3000)  # a late redelivery, a replay: its key is below the applied one
    assert rig.queue.enqueue([late]) == 1
    state, _, runs = rig.drain()

    answer = superseded_result(late, start_job(5000).order)
    assert answer.error_code == JobErrorCode.SUPERSEDED.value
    assert state == "idle"
    assert runs == [JobRun(late.job_id, answer)]
    assert rig.queue.log[late.job_id] == answer
    assert rig.queue.finished[-1].job_id == late.job_id
    assert rig.results.entries[-1] == answer.to_fields()
    assert len(rig.results.entries) == 2
    assert rig.engines.calls == calls_before
    assert rig.engines.containers[NAME].container_id == cid(1)
    assert rig.queue.records[G] == running(cid(1))
    assert rig.queue.applied(G).key == StreamId(5000, 0)
    assert rig.queue.queued(G) == []


def test_a_game_claimed_by_another_live_job_is_left_alone_busy() -> None:
    rig = Rig()
    rig.queue.enqueue([start_job(1000), stop_job(2000)])
    holder = rig.died_holding()  # another worker, still within its bound
    rig.queue.advance(CLAIM_SECONDS - 1)

    state, detail, runs = rig.drain()

    assert (state, detail, runs) == ("busy", holder.job.job_id, [])
    assert rig.queue.claim_of(G) == (holder.job.job_id, holder.epoch)
    assert rig.queue.queued(G) == [start_job(1000).job_id, stop_job(2000).job_id]
    assert rig.streams.asked == []
    assert rig.engines.calls == []
    assert rig.results.entries == []
    assert rig.queue.log == {}


def test_a_claim_past_its_bound_is_not_taken_over_by_a_drain_but_left_to_the_repair_pass() -> None:
    rig = Rig()
    rig.queue.enqueue([start_job(1000)])
    holder = rig.died_holding()
    rig.queue.advance(CLAIM_SECONDS + 1)

    state, detail, runs = rig.drain()

    assert state == "busy"
    assert detail == f"{holder.job.job_id} (past its bound: the periodic pass clears it)"
    assert runs == []
    assert rig.queue.claim_of(G) == (holder.job.job_id, holder.epoch)
    assert rig.engines.calls == []


# --------------------------------------------------------------------------- waiting for older jobs


def test_an_older_job_not_handed_on_yet_makes_the_game_wait_then_both_run_in_order() -> None:
    rig = Rig()
    older, newer = start_job(1000), stop_job(2000)
    rig.streams.not_handed_on(older.job_id, G, older.key)
    rig.streams.not_handed_on(f"{START_STREAM}:1500-0", "game-2", StreamId(1500, 0))  # another game's: no matter
    rig.queue.enqueue([newer])

    state, detail, runs = rig.drain()

    assert (state, detail, runs) == ("waiting", older.job_id, [])
    assert rig.queue.claim_of(G) == (None, 1)  # taken, then released
    assert rig.queue.queued(G) == [newer.job_id]
    assert rig.engines.calls == []
    assert rig.results.entries == []
    assert rig.queue.log == {}

    rig.queue.enqueue([older])  # its bridge queued it (the offset is not saved yet: still "after" it)
    state, _, runs = rig.drain()

    assert state == "idle"
    assert runs == [
        JobRun(older.job_id, JobResult.success(G, cid(1), ENDPOINT)),
        JobRun(newer.job_id, JobResult.success(G, cid(1), ENDPOINT)),
    ]
    assert rig.engines.calls == [("find", NAME), ("replace", NAME), ("find", NAME), ("stop_and_remove", cid(1))]
    assert rig.queue.records[G].status == RecordStatus.STOPPED.value


def test_more_job_entries_not_handed_on_than_the_scan_limit_make_the_game_wait() -> None:
    rig = Rig()
    job = start_job(5000)
    for seq in range(OLDER_ENTRIES_SCAN_LIMIT + 1):
        rig.streams.not_handed_on(f"{START_STREAM}:1000-{seq}", "game-2", StreamId(1000, seq))
    rig.queue.enqueue([job])

    state, detail, runs = rig.drain()

    assert (state, runs) == ("waiting", [])
    assert detail == f"more than {OLDER_ENTRIES_SCAN_LIMIT} job entries before 5000-0 are not handed on yet"
    assert rig.queue.claim_of(G)[0] is None
    assert rig.queue.queued(G) == [job.job_id]
    assert rig.engines.calls == []


# --------------------------------------------------------------------------- redeliveries


def test_a_redelivered_answered_job_is_dropped_from_the_queue_as_already_done_and_published_once() -> None:
    rig = Rig()
    job = start_job(1000)
    rig.queue.enqueue([job])
    answer = JobResult.success(G, cid(1), ENDPOINT)
    assert rig.drain()[2] == [JobRun(job.job_id, answer)]
    calls, entries, health = list(rig.engines.calls), list(rig.results.entries), list(rig.health.entries)

    assert rig.queue.enqueue([job]) == 0  # a redelivery handed on again: not queued
    assert rig.queue.queued(G) == []
    rig.queue.insert_queued(job)  # a re-enqueue that raced the job's own finish got in anyway

    state, _, runs = rig.drain()

    assert state == "idle"
    assert runs == [JobRun(job.job_id, answer, already_done=True)]
    assert rig.queue.queued(G) == []
    assert rig.queue.claim_of(G)[0] is None
    assert rig.engines.calls == calls
    assert rig.results.entries == entries
    assert rig.health.entries == health
    assert [f.job_id for f in rig.queue.finished] == [job.job_id]


def test_a_shell_call_with_an_answered_job_id_returns_the_old_answer_without_queueing_or_docker() -> None:
    rig = Rig()
    first = run_start_job(rig.ctx, StartJob(G, IMAGE), job_id="shell:1")
    assert first == JobRun("shell:1", JobResult.success(G, cid(1), ENDPOINT))
    calls = list(rig.engines.calls)

    again = run_start_job(rig.ctx, StartJob(G, IMAGE_2), job_id="shell:1")

    assert again == JobRun("shell:1", first.result, already_done=True)
    assert rig.engines.calls == calls
    assert rig.queue.queued(G) == []
    assert len(rig.results.entries) == 1


# --------------------------------------------------------------------------- conflicts and invalid jobs


def test_a_start_with_another_image_on_the_live_container_is_a_conflict_that_touches_nothing() -> None:
    rig = Rig()
    live = rig.engines.add(NAME, image_ref=IMAGE)
    record = running(live)
    rig.queue.put_record(G, record)
    job = start_job(1000, image_ref=IMAGE_2)
    rig.queue.enqueue([job])

    state, _, runs = rig.drain()

    reason = start_conflict(record, ContainerView(live, "running", IMAGE), IMAGE_2)
    assert reason is not None
    answer = JobResult.failure(G, JobErrorCode.CONFLICT, reason)
    assert state == "idle"
    assert runs == [JobRun(job.job_id, answer)]
    assert rig.engines.calls == [("find", NAME)]
    assert rig.engines.containers[NAME].container_id == live
    assert rig.queue.records[G] == record
    assert rig.results.entries == [answer.to_fields()]
    assert rig.health.entries == []
    assert rig.queue.applied(G).key == job.key


def test_an_invalid_queued_job_is_answered_invalid_request_in_its_turn_without_docker() -> None:
    rig = Rig()
    with pytest.raises(InvalidJob) as refused:
        decode_stop_job({"game_id": G, "reason": "bogus"})
    invalid = QueuedJob(
        f"{STOP_STREAM}:1000-0",
        G,
        JobKind.STOP,
        StreamId(1000, 0),
        invalid=refused.value.message,
        source_entry_id="1000-0",
    )
    later = start_job(2000)
    rig.queue.enqueue([later, invalid])

    state, _, runs = rig.drain()

    refusal = JobResult.failure(G, JobErrorCode.INVALID_REQUEST, refused.value.message)
    started = JobResult.success(G, cid(1), ENDPOINT)
    assert state == "idle"
    assert runs == [JobRun(invalid.job_id, refusal), JobRun(later.job_id, started)]
    assert rig.results.entries == [refusal.to_fields(), started.to_fields()]
    assert rig.engines.calls == [("find", NAME), ("replace", NAME)]
    assert rig.queue.applied(G).key == later.key


def test_a_bridge_queues_a_known_games_invalid_job_for_its_turn_and_answers_an_unknown_games_at_once() -> None:
    rig = Rig()
    rig.queue.put_record(G, RecordView(RecordStatus.STOPPED.value, "", IMAGE, ENDPOINT))
    handoffs = [
        Handoff("1000-0", {"game_id": G, "reason": "bogus"}, None),
        Handoff("1000-1", {"game_id": "game-9", "reason": "bogus"}, None),
        Handoff("1000-2", {"reason": "finished"}, None),  # names no game: skipped
        Handoff("1000-3", {"game_id": G, "reason": "finished"}, "1000-0"),
    ]

    queued = hand_on_jobs(rig.ctx, JobKind.STOP, STOP_STREAM, handoffs, rig.turns.append)

    assert [j.job_id for j in queued] == [f"{STOP_STREAM}:1000-0", f"{STOP_STREAM}:1000-3"]
    assert queued[0].invalid is not None
    assert rig.turns == [G]
    assert rig.queue.queued(G) == [f"{STOP_STREAM}:1000-0", f"{STOP_STREAM}:1000-3"]
    outside = rig.queue.log[f"{STOP_STREAM}:1000-1"]
    assert (outside.game_id, outside.error_code) == ("game-9", JobErrorCode.INVALID_REQUEST.value)
    assert rig.results.entries == [outside.to_fields()]
    assert rig.queue.results == []  # outside every game's sequence
    assert not rig.queue.has_game("game-9")

    state, _, runs = rig.drain()

    assert state == "idle"
    assert [(r.job_id, r.result.error_code) for r in runs] == [
        (f"{STOP_STREAM}:1000-0", JobErrorCode.INVALID_REQUEST.value),
        (f"{STOP_STREAM}:1000-3", JobErrorCode.REPLAY_NO_OP.value),
    ]
    assert rig.engines.calls == [("find", NAME)]


# --------------------------------------------------------------------------- claims lost


def test_a_claim_lost_while_the_job_ran_commits_nothing_and_the_job_is_answered_once_later() -> None:
    rig = Rig()
    job = start_job(1000)
    rig.queue.enqueue([job])
    rig.engines.on("replace", lambda: rig.queue.lose_claim(G))  # the periodic pass clears it mid-start

    state, _, runs = rig.drain()

    assert (state, runs) == ("claim_lost", [])
    assert rig.queue.queued(G) == [job.job_id]
    assert rig.queue.log == {}
    assert rig.queue.results == []
    assert rig.results.entries == []
    assert rig.health.entries == []
    assert rig.queue.records == {}
    assert rig.queue.applied(G).key == StreamId(0, 0)
    assert rig.queue.claim_of(G) == (None, 2)

    state, _, runs = rig.drain()

    answer = JobResult.success(G, cid(2), ENDPOINT)
    assert (state, runs) == ("idle", [JobRun(job.job_id, answer)])
    assert rig.results.entries == [answer.to_fields()]
    assert rig.engines.calls == [("find", NAME), ("replace", NAME), ("find", NAME), ("replace", NAME)]
    assert rig.queue.records[G] == running(cid(2))


def test_a_claim_lost_before_the_mark_stops_the_job_before_it_changes_docker_or_the_record() -> None:
    rig = Rig()
    rig.engines.add(NAME, state="exited")
    record = running(cid(1))
    rig.queue.put_record(G, record)
    rig.queue.enqueue([start_job(1000)])
    rig.engines.on("find", lambda: rig.queue.lose_claim(G))

    state, _, runs = rig.drain()

    assert (state, runs) == ("claim_lost", [])
    assert rig.engines.calls == [("find", NAME)]
    assert rig.queue.records[G] == record
    assert rig.queue.queued(G) == [start_job(1000).job_id]
    assert rig.results.entries == []


# --------------------------------------------------------------------------- the periodic repair


def test_repair_settles_an_expired_claim_as_running_when_docker_runs_the_games_container() -> None:
    rig = Rig()
    job = start_job(1000)
    rig.queue.enqueue([job])
    dead_worker = rig.died_holding()
    made = rig.engines.add(NAME, image_ref=IMAGE)  # the start got as far as Docker, then the worker died
    rig.queue.advance(CLAIM_SECONDS + 1)

    report = rig.repair()

    assert report == {"finished": [G], "reverted": [], "redispatched": []}
    assert rig.turns == [G]
    assert rig.queue.records[G] == running(made)
    assert rig.queue.claim_of(G) == (None, dead_worker.epoch + 1)
    assert rig.queue.queued(G) == [job.job_id]
    assert rig.engines.calls == [("find", NAME)]
    assert rig.queue.mark(dead_worker, RecordStatus.STARTING) is False  # the old job is fenced off

    state, _, runs = rig.drain()

    assert (state, runs) == ("idle", [JobRun(job.job_id, JobResult.replay(G, made, ENDPOINT))])
    assert rig.results.entries == [JobResult.replay(G, made, ENDPOINT).to_fields()]


@pytest.mark.parametrize(
    ("job", "before", "mark", "after"),
    [
        (
            stop_job(1000),
            RecordStatus.DISAPPEARED,
            RecordStatus.STOPPING,
            RecordView(RecordStatus.STOPPED.value, "", IMAGE, ENDPOINT),
        ),
        (start_job(1000), RecordStatus.RUNNING, RecordStatus.STARTING, running(cid(1))),
    ],
    ids=["stop-of-a-disappeared-game", "restart-of-a-running-record"],
)
def test_repair_puts_back_the_status_an_expired_claims_mark_replaced_when_no_container_runs(
    job: QueuedJob, before: RecordStatus, mark: RecordStatus, after: RecordView
) -> None:
    rig = Rig()
    old = RecordView(before.value, DEAD_ID, IMAGE, ENDPOINT)
    rig.queue.put_record(G, old)
    rig.queue.enqueue([job])
    dead_worker = rig.died_holding()
    assert rig.queue.mark(dead_worker, mark)
    assert rig.queue.records[G].status == mark.value
    rig.queue.advance(CLAIM_SECONDS + 1)

    report = rig.repair()

    assert report == {"finished": [], "reverted": [G], "redispatched": []}
    assert rig.turns == [G]
    assert rig.queue.records[G] == old
    assert rig.queue.claim_of(G) == (None, dead_worker.epoch + 1)
    assert rig.queue.queued(G) == [job.job_id]

    state, _, runs = rig.drain()

    assert state == "idle"
    assert [(r.job_id, r.result.outcome.value, r.result.error_code) for r in runs] == [(job.job_id, "success", "")]
    assert rig.queue.records[G] == after


def test_repair_redispatches_a_game_whose_job_waited_unclaimed_past_repair_after() -> None:
    rig = Rig()
    lost = start_job(1000)
    rig.queue.enqueue([lost])  # its turn's message was lost
    rig.queue.advance(31)
    rig.queue.enqueue([start_job(2000, game_id="game-2")])  # queued just now: its turn is on its way

    report = rig.repair(repair_after_seconds=30)

    assert report == {"finished": [], "reverted": [], "redispatched": [G]}
    assert rig.turns == [G]
    assert rig.engines.calls == []
    assert rig.drain()[2] == [JobRun(lost.job_id, JobResult.success(G, cid(1), ENDPOINT))]


def test_repair_leaves_a_live_claim_and_its_queued_jobs_alone() -> None:
    rig = Rig()
    rig.queue.enqueue([start_job(1000), stop_job(2000)])
    holder = rig.died_holding()
    rig.queue.advance(CLAIM_SECONDS - 1)  # long past repair_after, within the claim's bound

    report = rig.repair(repair_after_seconds=30)

    assert report == {"finished": [], "reverted": [], "redispatched": []}
    assert rig.turns == []
    assert rig.engines.calls == []
    assert rig.queue.claim_of(G) == (holder.job.job_id, holder.epoch)


def test_repair_leaves_an_expired_claim_of_a_game_on_another_docker_host_to_that_hosts_pass() -> None:
    rig = Rig()
    rig.queue.put_record(G, RecordView(RecordStatus.RUNNING.value, DEAD_ID, IMAGE, ENDPOINT, "host-b"))
    rig.queue.enqueue([stop_job(1000)])
    holder = rig.died_holding()
    rig.queue.advance(CLAIM_SECONDS + 1)

    assert rig.repair(docker_host="host-a") == {"finished": [], "reverted": [], "redispatched": []}
    assert rig.engines.calls == []
    assert rig.queue.claim_of(G) == (holder.job.job_id, holder.epoch)


# --------------------------------------------------------------------------- Docker


@pytest.mark.parametrize(
    ("job", "container_state", "failing", "mark"),
    [
        (start_job(1000), "exited", "replace", RecordStatus.STARTING),
        (stop_job(1000), "running", "stop_and_remove", RecordStatus.STOPPING),
    ],
    ids=["start", "stop"],
)
def test_docker_unreachable_past_the_retry_window_fails_docker_unavailable_and_puts_the_mark_back(
    job: QueuedJob, container_state: str, failing: str, mark: RecordStatus
) -> None:
    rig = Rig()
    existing = rig.engines.add(NAME, state=container_state)
    record = running(existing)
    rig.queue.put_record(G, record)
    rig.queue.enqueue([job])
    marks: list[str] = []
    rig.engines.on(failing, lambda: marks.append(rig.queue.records[G].status))
    rig.engines.unreachable(failing)
    began = rig.queue.now

    state, _, runs = rig.drain()

    answer = JobResult.failure(
        G,
        JobErrorCode.DOCKER_UNAVAILABLE,
        "the Docker Engine did not answer for 2 s (GALAXY_DOCKER_RETRY_SECONDS): connection refused (fake)",
    )
    assert (state, runs) == ("idle", [JobRun(job.job_id, answer)])
    assert marks == [mark.value]  # the record was marked while Docker was tried
    assert rig.queue.records[G] == record  # and put back
    assert rig.queue.now - began == pytest.approx(rig.ctx.docker_retry_seconds)
    assert rig.engines.calls[0] == ("find", NAME)
    assert {method for method, _ in rig.engines.calls[1:]} == {failing}
    assert len(rig.engines.calls) > 2  # retried
    assert rig.engines.containers[NAME].container_id == existing
    assert rig.results.entries == [answer.to_fields()]
    assert rig.health.entries == []
    assert rig.queue.queued(G) == []


def test_a_game_whose_container_is_on_another_docker_host_is_released_as_moved() -> None:
    rig = Rig(docker_host="host-a")
    rig.queue.put_record(G, RecordView(RecordStatus.RUNNING.value, DEAD_ID, IMAGE, ENDPOINT, "host-b"))
    job = stop_job(1000)
    rig.queue.enqueue([job])

    assert rig.drain() == ("moved", "host-b", [])
    assert rig.queue.claim_of(G)[0] is None
    assert rig.queue.queued(G) == [job.job_id]
    assert rig.engines.calls == []


# --------------------------------------------------------------------------- commits refused, shell calls


def test_a_result_the_database_refuses_is_answered_invalid_request_outside_the_games_sequence() -> None:
    rig = Rig()
    job = start_job(1000)
    rig.queue.enqueue([job])
    rig.queue.fail_next("finish", ValueRefused("22001", "value too long"))

    state, _, runs = rig.drain()

    answer = JobResult.failure(G, JobErrorCode.INVALID_REQUEST, "refused by the database: SQLSTATE 22001")
    assert (state, runs) == ("idle", [JobRun(job.job_id, answer)])
    assert rig.queue.queued(G) == []
    assert rig.queue.results == []
    assert rig.queue.log == {job.job_id: answer}
    assert rig.results.entries == [answer.to_fields()]
    assert rig.queue.records == {}


def test_a_shell_call_on_a_game_another_worker_holds_gives_up_with_not_answered() -> None:
    rig = Rig()
    rig.queue.enqueue([stop_job(1000)])
    rig.died_holding()
    job = QueuedJob("shell:9", G, JobKind.START, rig.streams.now_key(), image_ref=IMAGE)
    began = rig.queue.now

    with pytest.raises(NotAnswered, match="the game is busy"):
        run_job_now(rig.ctx, job, wait_seconds=10)

    assert rig.queue.now - began >= 10
    assert rig.queue.queued(G) == [stop_job(1000).job_id, "shell:9"]
    assert rig.engines.calls == []


def test_a_result_the_database_refuses_after_a_mark_leaves_no_transitional_record_behind() -> None:
    rig = Rig()
    rig.engines.add(NAME, state="exited")  # a running record whose container died: the restart marks it
    rig.queue.put_record(G, running(cid(1)))
    rig.queue.enqueue([start_job(1000)])
    rig.queue.fail_next("finish", ValueRefused("22021", "invalid byte sequence"))

    state, _, runs = rig.drain()
    assert (state, [r.result.error_code for r in runs]) == ("idle", [JobErrorCode.INVALID_REQUEST.value])
    rig.queue.advance(CLAIM_SECONDS + 1)
    rig.repair(repair_after_seconds=30)  # whichever side settles it, after one pass nothing is half-way

    assert rig.queue.transitional() == []


def test_a_backend_gone_mid_job_gives_the_game_back_at_once_and_the_job_stays_queued() -> None:
    rig = Rig()
    job = start_job(1000)
    rig.queue.enqueue([job])
    rig.queue.fail_next("finish", PostgresUnavailable("connection refused"))

    with pytest.raises(BackendUnavailable):
        rig.drain()  # the task is retried by its decorator

    assert rig.queue.claim_of(G)[0] is None  # not held until the bound: the retry can take it at once
    assert rig.queue.queued(G) == [job.job_id]
    state, _, runs = rig.drain()
    assert state == "idle"
    # Nothing of the first try was committed: no record, so its container is replaced by a fresh start.
    assert [(r.job_id, r.result.outcome, r.result.error_code) for r in runs] == [(job.job_id, "success", "")]
    assert len(rig.queue.results_of(G)) == 1
