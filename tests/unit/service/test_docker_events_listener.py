"""The Docker events listener's start: where it reads from, and the reconcile that covers what it cannot read."""

from __future__ import annotations

from galaxy_tasks.domain.rtmanager.docker_events import ContainerEvent, EventPosition
from galaxy_tasks.service.docker_events import (
    POSITION_MEMORY_NANOS,
    DockerEventsListener,
    ListenerActions,
    ListenerReport,
)
from galaxy_tasks.service.health_publisher import HealthPublisher
from galaxy_tasks.testing.bridge import FakeLease
from galaxy_tasks.testing.docker import FakeDocker
from galaxy_tasks.testing.store import FakeHealthStream, FakeInspectBaselines, FakeRuntimeStore

NOW_NS = 1_800_000_000_000 * 1_000_000


class SavedPosition:
    def __init__(self, position: EventPosition | None) -> None:
        self.position = position

    def load(self) -> EventPosition | None:
        return self.position

    def save(self, position: EventPosition) -> None:
        self.position = position


class RecordingDocker(FakeDocker):
    def __init__(self) -> None:
        super().__init__(lambda: NOW_NS // 1_000_000)
        self.reads: list[int] = []

    def read(self, *, since_nano: int, window_seconds: float) -> list[ContainerEvent]:
        self.reads.append(since_nano)
        return []


def _run_once(saved: EventPosition | None) -> tuple[RecordingDocker, list[str]]:
    docker = RecordingDocker()
    store = FakeRuntimeStore()
    asked: list[str] = []
    listener = DockerEventsListener(
        source=docker,
        runtime=docker,
        state=SavedPosition(saved),
        lease=FakeLease(),
        actions=ListenerActions(
            HealthPublisher(store, FakeHealthStream()),
            store,
            FakeInspectBaselines(),
            lambda g, c: asked.append(f"inspect {g}"),
            lambda: asked.append("reconcile"),
        ),
        clock_ns=lambda: NOW_NS,
    )
    calls = iter([False, True])
    listener.run(lambda: next(calls))
    return docker, asked


def test_a_first_listener_asks_for_a_reconcile_before_it_reads_and_reads_from_now() -> None:
    docker, asked = _run_once(None)
    assert asked == ["reconcile"]
    assert docker.reads == [NOW_NS]


def test_a_saved_position_is_resumed_from_with_a_reconcile_for_what_docker_no_longer_keeps() -> None:
    saved = EventPosition(NOW_NS - 60 * 1_000_000_000)
    docker, asked = _run_once(saved)
    assert asked == ["reconcile"]
    assert docker.reads == [saved.floor]


def test_a_position_older_than_the_idempotency_memory_is_dropped_and_the_reconcile_covers_the_gap() -> None:
    docker, asked = _run_once(EventPosition(NOW_NS - POSITION_MEMORY_NANOS - 1))
    assert asked == ["reconcile"]
    assert docker.reads == [NOW_NS], "re-reading events whose keys are pruned could publish them twice"


class NoLookups(FakeRuntimeStore):
    def running_container(self, game_id: str) -> str | None:
        raise AssertionError(f"looked up a game id no record can have: {game_id[:20]!r}")


def test_an_event_whose_game_label_no_record_can_carry_is_ignored_without_a_lookup() -> None:
    docker = RecordingDocker()
    store = NoLookups()
    listener = DockerEventsListener(
        source=docker,
        runtime=docker,
        state=SavedPosition(None),
        lease=FakeLease(),
        actions=ListenerActions(
            HealthPublisher(store, FakeHealthStream()), store, FakeInspectBaselines(), lambda g, c: None, lambda: None
        ),
    )
    report = ListenerReport("test")
    for game_id in ("a\x00b", "g" * 5000):
        listener.handle(ContainerEvent("c1", game_id, "die", NOW_NS, exit_code=1), report)
    assert (report.published, store.events) == ({}, [])
