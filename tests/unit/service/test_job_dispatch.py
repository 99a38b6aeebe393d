"""Job dispatch on the shipped fakes: which Docker host's worker takes a game's turn, and how it gets there.

Two workers (hosts ``a`` and ``b``) share one fake queue, as two hosts' workers
share PostgreSQL; a :class:`FakeForwarder` carries the turns between them (or
loses them).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.domain.rtmanager.job_order import QueuedJob
from galaxy_tasks.domain.rtmanager.jobs import JobErrorCode, JobKind, JobResult, RecordStatus, RecordView
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.service.job_dispatch import JobDispatch, JobNotQueued
from galaxy_tasks.service.jobs import JobRun, NotAnswered
from galaxy_tasks.testing.job_dispatch import FakeForwarder, FakePlacement
from galaxy_tasks.testing.jobs import (
    TEST_ENGINE_SETTINGS,
    FakeEngineContainers,
    FakeJobQueue,
    FakeJobStreams,
    job_context,
)

G = "game-1"
IMAGE = "galaxy/engine:1"
ENDPOINT = "http://game-1:8080"
START_STREAM = "runtime:start_jobs"
CLAIM_SECONDS = 300.0
REPAIR_AFTER_SECONDS = 30.0


def cid(n: int) -> str:
    """The id of the ``n``-th container the fake Docker creates."""
    return f"{n:04d}" + "e" * 60


class Hosts:
    """The workers of ``hosts`` (each its own Docker), one queue, one forwarder between them."""

    def __init__(self, *hosts: str) -> None:
        self.queue = FakeJobQueue()
        self.streams = FakeJobStreams()
        self.forwarder = FakeForwarder()
        self.engines: dict[str, FakeEngineContainers] = {}
        self.workers: dict[str, JobDispatch] = {}
        for host in hosts or ("",):
            self.engines[host] = FakeEngineContainers()
            ctx = job_context(
                self.queue,
                self.streams,
                self.engines[host],
                settings=replace(TEST_ENGINE_SETTINGS, docker_host=host),
                claim_seconds=CLAIM_SECONDS,
            )
            self.workers[host] = JobDispatch(
                ctx, FakePlacement(self.queue), self.forwarder, hosts, repair_after_seconds=REPAIR_AFTER_SECONDS
            )

    def up(self, *hosts: str) -> None:
        """These hosts' workers take the turns sent to them."""
        for host in hosts:
            self.forwarder.deliver_to(host, self.workers[host].take_turn)

    def running_on(self, host: str, *games: str) -> None:
        for game in games:
            self.queue.put_record(game, RecordView(RecordStatus.RUNNING.value, "c-" + game, IMAGE, "", host))


def start(game_id: str = G) -> dict[str, str]:
    return {"game_id": game_id, "image_ref": IMAGE}


def test_with_one_docker_host_a_call_is_answered_where_it_lands_and_nothing_is_forwarded() -> None:
    rig = Hosts()

    run = rig.workers[""].call(JobKind.START, start(), job_id="task:1")

    assert run == JobRun("task:1", JobResult.success(G, cid(1), ENDPOINT))
    assert rig.forwarder.sent == []


def test_a_new_game_is_placed_on_the_host_running_fewest_games_and_ties_go_to_the_first_listed() -> None:
    rig = Hosts("a", "b", "c")
    rig.running_on("a", "x1", "x2")
    rig.running_on("b", "y1")
    rig.running_on("c", "z1")

    assert rig.workers["a"].host_for("new-game") == "b"


def test_a_game_with_a_record_stays_on_the_host_its_record_names_however_busy() -> None:
    rig = Hosts("a", "b")
    rig.running_on("a", "x1", "x2", "x3")
    rig.queue.put_record(G, RecordView(RecordStatus.STOPPED.value, "", IMAGE, "", "a"))

    assert rig.workers["b"].host_for(G) == "a"


def test_a_call_landing_on_another_hosts_worker_is_run_on_the_games_host_and_answered_to_the_caller() -> None:
    rig = Hosts("a", "b")
    rig.running_on("a", "x1")  # the new game goes to b
    rig.up("a", "b")

    run = rig.workers["a"].call(JobKind.START, start(), job_id="task:1")

    assert run == JobRun("task:1", JobResult.success(G, cid(1), ENDPOINT))
    assert rig.forwarder.sent == [(G, "b")]
    assert rig.engines["a"].touched() == []
    assert rig.queue.records[G].docker_host == "b"


def test_a_call_whose_forwarded_turn_is_lost_fails_after_the_claim_bound_and_the_job_stays_queued() -> None:
    rig = Hosts("a", "b")
    rig.running_on("a", "x1")
    started = rig.queue.now

    with pytest.raises(NotAnswered, match="queued, not answered"):
        rig.workers["a"].call(JobKind.START, start(), job_id="task:1")

    assert rig.queue.now - started >= CLAIM_SECONDS
    assert rig.queue.queued(G) == ["task:1"]
    assert rig.engines["a"].touched() == rig.engines["b"].touched() == []


def test_a_turn_taken_by_a_host_the_game_no_longer_lives_on_is_forwarded_to_its_host_untouched() -> None:
    rig = Hosts("a", "b")
    rig.running_on("b", G)  # the game moved to b after its turn was sent to a
    stop = QueuedJob("runtime:stop_jobs:2000-0", G, JobKind.STOP, StreamId(2000, 0), source_entry_id="2000-0")
    rig.queue.enqueue([stop])

    report = rig.workers["a"].take_turn(G)

    assert (report.state, report.detail, report.runs) == ("moved", "b", [])
    assert rig.forwarder.sent == [(G, "b")]
    assert rig.engines["a"].touched() == []
    assert rig.queue.queued(G) == [stop.job_id]
    assert rig.queue.claim_of(G)[0] is None


def test_a_call_without_a_game_id_is_refused_and_leaves_no_queued_job_and_no_turn() -> None:
    rig = Hosts("a", "b")

    refused = rig.workers["a"].call(JobKind.START, {"image_ref": IMAGE}, job_id="task:1")

    assert isinstance(refused, JobNotQueued)
    assert refused.as_dict()["skipped"] is True
    assert rig.queue.queue == {}
    assert rig.forwarder.sent == []


def test_a_malformed_entry_of_a_game_without_history_is_answered_once_outside_every_game() -> None:
    rig = Hosts("a", "b")

    answered = rig.workers["a"].entry(JobKind.START, START_STREAM, "1000-0", {"game_id": G})

    assert isinstance(answered, JobNotQueued)
    assert [(f.job_id, f.result.error_code) for f in rig.queue.finished] == [
        (f"{START_STREAM}:1000-0", JobErrorCode.INVALID_REQUEST.value)
    ]
    assert rig.queue.queue == {}
    assert rig.forwarder.sent == []


def test_the_repair_sends_a_turn_nobody_took_to_the_games_host() -> None:
    rig = Hosts("a", "b")
    rig.running_on("a", "x1")  # the new game goes to b
    dispatcher = rig.workers["a"].bridge_dispatcher(JobKind.START, START_STREAM)
    dispatcher.send_each([Handoff("1000-0", start(), None)])  # its turn goes to b, whose worker is down
    assert rig.forwarder.sent == [(G, "b")]
    rig.up("b")

    rig.queue.advance(REPAIR_AFTER_SECONDS + 1)
    report = rig.workers["a"].repair()

    assert report.redispatched == [G]
    assert rig.forwarder.sent == [(G, "b"), (G, "b")]
    assert rig.queue.results_of(G)[0]["outcome"] == "success"
    assert rig.queue.records[G].docker_host == "b"
