"""The Docker events listener against a real Docker Engine, PostgreSQL and Redis (in-process).

An OOM kill is one ``container_oom`` (not also a ``container_exited``), a
process exiting 3 is ``container_exited`` with ``exit_code`` 3, ``docker rm -f``
of a running record's container is one ``container_disappeared``, and a
listener that resumes from an older position publishes nothing twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import cast

import pytest

from galaxy_tasks.adapters.docker.events import DockerEventSource
from galaxy_tasks.adapters.docker.runtime import docker_time_ms
from galaxy_tasks.adapters.redis.docker_events_state import RedisDockerEventsState
from galaxy_tasks.adapters.redis.lease import RedisLease
from galaxy_tasks.contract import DOCKER_EVENTS_LEASE_KEY, HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.rtmanager.docker_events import EventPosition
from galaxy_tasks.service.docker_events import DockerEventsListener, ListenerActions, ListenerReport
from tests.support.rtm_rig import Rig, new_game_id, until

pytestmark = pytest.mark.integration


class Running:
    """A listener in a thread of the test process, with what it asked for recorded."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.state = RedisDockerEventsState(rig.pipeline.r, rig.pipeline.redis_url)
        self.inspections: list[tuple[str, str]] = []
        self.reconciles = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.report: ListenerReport | None = None

    def _reconcile(self) -> None:
        self.reconciles += 1

    def start(self) -> Running:
        listener = DockerEventsListener(
            source=DockerEventSource(self.rig.runtime),
            runtime=self.rig.runtime,
            state=self.state,
            lease=RedisLease(self.rig.pipeline.r, DOCKER_EVENTS_LEASE_KEY, 5.0, self.rig.pipeline.redis_url),
            actions=ListenerActions(
                self.rig.publisher,
                self.rig.records,
                self.rig.baselines,
                lambda g, c: self.inspections.append((g, c)),
                self._reconcile,
            ),
            window_seconds=0.5,
        )
        self._stop.clear()

        def run() -> None:
            self.report = listener.run(self._stop.is_set)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        until(lambda: bool(self.rig.pipeline.r.exists(DOCKER_EVENTS_LEASE_KEY)), "the listener to hold its lease")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            assert not self._thread.is_alive(), "the listener did not stop"


@pytest.fixture
def listener(rig: Rig) -> Iterator[Running]:
    running = Running(rig).start()
    yield running
    running.stop()


def _events(rig: Rig, game_id: str) -> list[tuple[str, dict[str, object]]]:
    entries = cast(list[tuple[str, dict[str, str]]], rig.pipeline.r.xrange(HEALTH_EVENTS_STREAM))
    return [(f["event_type"], json.loads(f["details"])) for _, f in entries if f["game_id"] == game_id]


def test_an_oom_kill_is_one_container_oom_and_no_container_exited(rig: Rig, listener: Running) -> None:
    game = new_game_id()
    rig.start(game, ["sh", "-c", "head -c 200000000 /dev/zero | tail"], mem_limit="16m", memswap_limit="16m")
    until(lambda: any(kind == "container_oom" for kind, _ in _events(rig, game)), "container_oom")
    until(lambda: (listener.state.load() or EventPosition()).time_nano > 0, "the listener to save its position")
    assert _events(rig, game) == [("container_oom", {"exit_code": 137})]


def test_a_process_exiting_3_is_container_exited_with_exit_code_3(rig: Rig, listener: Running) -> None:
    game = new_game_id()
    rig.start(game, ["sh", "-c", "sleep 0.5; exit 3"])
    until(lambda: _events(rig, game) != [], "container_exited")
    assert _events(rig, game) == [("container_exited", {"exit_code": 3})]


def test_docker_rm_f_of_a_running_records_container_is_one_container_disappeared(rig: Rig, listener: Running) -> None:
    game = new_game_id()
    container_id = rig.start(game)
    rig.client.containers.get(container_id).remove(force=True)
    until(lambda: any(kind == "container_disappeared" for kind, _ in _events(rig, game)), "container_disappeared")
    assert rig.record_status(game) == "disappeared"
    assert [kind for kind, _ in _events(rig, game)].count("container_disappeared") == 1
    assert rig.reconcile().disappeared == []  # the reconciler finds it reported already


def test_a_listener_resumed_from_an_older_position_publishes_nothing_twice_and_asks_for_a_reconcile(
    rig: Rig,
) -> None:
    first = Running(rig).start()
    game = new_game_id()
    container_id = rig.start(game, ["sh", "-c", "exit 3"])
    until(lambda: _events(rig, game) != [], "container_exited")
    first.stop()
    finished = docker_time_ms(rig.client.containers.get(container_id).attrs["State"]["FinishedAt"])
    first.state.save(EventPosition((finished - 1000) * 1_000_000))  # as if it died before saving the die
    second = Running(rig).start()
    try:
        until(lambda: second.reconciles == 1, "the resumed listener to ask for a reconcile once Docker answered")
        assert [kind for kind, _ in _events(rig, game)] == ["container_exited"]
        assert (first.reconciles, second.reconciles) == (1, 1)
    finally:
        second.stop()


def test_a_failing_healthcheck_makes_the_listener_ask_for_an_inspect_of_that_game(rig: Rig, listener: Running) -> None:
    game = new_game_id()
    container_id = rig.start(
        game, healthcheck={"test": ["CMD", "sh", "-c", "exit 1"], "interval": 200_000_000, "retries": 1}
    )
    until(lambda: (game, container_id) in listener.inspections, "an inspect request for the game")


def test_a_first_listener_starts_from_now_and_leaves_older_events_to_the_reconciler(rig: Rig) -> None:
    game = new_game_id()
    container_id = rig.start(game, ["sh", "-c", "exit 4"])
    until(lambda: rig.client.containers.get(container_id).status == "exited", "the container to exit")
    running = Running(rig).start()
    try:
        until(lambda: running.reconciles == 1, "the listener to ask for a reconcile")
        assert _events(rig, game) == []
    finally:
        running.stop()
