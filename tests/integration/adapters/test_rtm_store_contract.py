"""The RTM store's contract, on PostgreSQL and on the shipped fake alike (so the fake can be trusted).

The death and loss compare-and-swaps on (game, container), the revival of an
exited record, the down period a down event begins, and its recovery: folded
evidence, one ``probe_recovered`` per period, observations of an older period
ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, text

from galaxy_tasks.adapters.postgres.health_events import PostgresHealthEventStore
from galaxy_tasks.adapters.postgres.rtm_records import PostgresRuntimeRecords
from galaxy_tasks.domain.rtmanager.convergence import RecoveryEvidence
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.ports.rtmanager import HealthEventStore, RunningRecords
from galaxy_tasks.testing.store import FakeRuntimeStore
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

AT = 1_700_000_000_000


@dataclass
class Side:
    store: HealthEventStore
    records: RunningRecords
    put_running: Callable[[str, str], None]
    record_status: Callable[[str], str]


def _postgres(pipeline: Pipeline, engines: tuple[Engine, Engine]) -> Side:
    def status(game_id: str) -> str:
        with pipeline.engine.connect() as conn:
            return str(
                conn.execute(
                    text("SELECT status FROM rtmanager.runtime_records WHERE game_id = :g"), {"g": game_id}
                ).scalar_one()
            )

    return Side(
        PostgresHealthEventStore(engines[0]),
        PostgresRuntimeRecords(engines[1]),
        pipeline.add_running_engine,
        status,
    )


def _fake() -> Side:
    fake = FakeRuntimeStore()
    return Side(
        fake,
        fake,
        lambda game, container: fake.put_record(game, "running", container),
        lambda g: fake.records[g].status,
    )


@pytest.fixture(params=["postgres", "fake"])
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    if request.param == "postgres":
        yield _postgres(request.getfixturevalue("pipeline"), request.getfixturevalue("engines"))
    else:
        yield _fake()


def _down_seq(side: Side, game_id: str) -> int:
    return next((r.down_seq for r in side.records.running() if r.game_id == game_id), -1)


def test_a_death_is_recorded_once_for_the_current_container_only(side: Side) -> None:
    side.put_running("g1", "c1")
    assert side.store.record_death(HealthEvent.container_exited("g1", "c-other", AT, exit_code=3)) is None
    assert side.store.record_death(HealthEvent.container_exited("g1", "c1", AT, exit_code=3)) is not None
    assert side.store.record_death(HealthEvent.container_oom("g1", "c1", AT, exit_code=137)) is None
    assert side.store.record_loss(HealthEvent.container_disappeared("g1", "c1", AT)) is None
    assert side.record_status("g1") == "exited"
    assert side.records.running_container("g1") is None
    assert [r.game_id for r in side.records.exited()] == ["g1"]


def test_an_exited_record_is_revived_only_for_its_own_container_and_only_once(side: Side) -> None:
    side.put_running("g1", "c1")
    side.store.record_death(HealthEvent.container_exited("g1", "c1", AT, exit_code=143))
    assert side.store.record_revival("g1", "c-other") is False
    assert side.store.record_revival("g1", "c1") is True
    assert side.store.record_revival("g1", "c1") is False
    assert side.records.running_container("g1") == "c1"


def test_a_down_event_begins_a_down_period_that_only_its_recovery_ends(side: Side) -> None:
    side.put_running("g1", "c1")
    side.store.record(HealthEvent.container_started("g1", "c1", AT, image_ref="engine:1"))
    assert _down_seq(side, "g1") == 0
    side.store.record(HealthEvent.container_exited("g1", "c1", AT + 1, exit_code=2))
    period = _down_seq(side, "g1")
    assert period == 2
    side.store.record(HealthEvent.container_started("g1", "c2", AT + 2, image_ref="engine:1"))
    assert _down_seq(side, "g1") == period, "a start does not end a down period: its recovery does"

    def recovered(evidence: RecoveryEvidence) -> HealthEvent | None:
        if not evidence.complete(2):
            return None
        return HealthEvent.probe_recovered("g1", evidence.container_id, AT + 9, prior_failures=evidence.probe_failures)

    def probe_ok(evidence: RecoveryEvidence) -> RecoveryEvidence:
        return evidence.with_probe("c1", ok=True)

    assert side.store.advance_recovery("g1", period, probe_ok, recovered) is None
    assert side.store.advance_recovery("g1", period, lambda e: e.with_inspect("c1", healthy=True), recovered) is None
    assert side.store.advance_recovery("g1", period - 1, probe_ok, recovered) is None, "an older period's probe"
    assert side.store.advance_recovery("g1", period, probe_ok, recovered) is not None, "inspect + 2 probes"
    assert _down_seq(side, "g1") == 0
    assert side.store.advance_recovery("g1", period, probe_ok, recovered) is None, "one recovery per period"


def test_a_new_down_event_forgets_the_evidence_gathered_so_far(side: Side) -> None:
    side.put_running("g1", "c1")
    side.store.record(HealthEvent.inspect_unhealthy("g1", "c1", AT, restart_count=1, state="running", health=""))
    first = _down_seq(side, "g1")
    side.store.advance_recovery("g1", first, lambda e: e.with_inspect("c1", healthy=True), lambda e: None)
    side.store.record(HealthEvent.probe_failed("g1", "c1", AT + 1, consecutive_failures=4, last_error="refused"))
    second = _down_seq(side, "g1")
    seen: list[RecoveryEvidence] = []

    def look(evidence: RecoveryEvidence) -> RecoveryEvidence:
        seen.append(evidence)
        return evidence

    side.store.advance_recovery("g1", second, look, lambda e: None)
    assert second > first
    assert seen == [RecoveryEvidence(probe_failures=4)]
