"""The periodic relay holds its stream to its retention and alarms on consumer groups close to losing entries."""

from __future__ import annotations

from prometheus_client import REGISTRY

from galaxy_tasks.ports.outbox import RetentionReport
from galaxy_tasks.service.outbox import relay
from galaxy_tasks.testing.clock import FakeClock
from galaxy_tasks.testing.gamemaster import FakeDatabase
from galaxy_tasks.testing.lobby import FakeLobbyOutbox

LABEL = "test.retention"


def _gauge(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"stream": LABEL}) or 0.0


def _relay(outbox: FakeLobbyOutbox) -> None:
    relay(outbox, batch_games=10, time_budget_seconds=1, clock=FakeClock())


def test_each_relay_run_enforces_the_retention_and_counts_what_it_trimmed() -> None:
    outbox = FakeLobbyOutbox(FakeDatabase(), label=LABEL)
    outbox.retention = RetentionReport(3600, trimmed=7, oldest_entry_age_seconds=1800, unread_ages_seconds={})
    before = REGISTRY.get_sample_value("galaxy_stream_trimmed_by_age_total", {"stream": LABEL}) or 0.0
    _relay(outbox)
    assert outbox.retention_calls == 1
    assert REGISTRY.get_sample_value("galaxy_stream_trimmed_by_age_total", {"stream": LABEL}) == before + 7
    assert _gauge("galaxy_stream_oldest_entry_age_seconds") == 1800
    assert _gauge("galaxy_stream_unread_at_risk") == 0


def test_a_group_whose_oldest_unread_is_past_four_fifths_of_the_retention_is_alarmed() -> None:
    outbox = FakeLobbyOutbox(FakeDatabase(), label=LABEL)
    ages = {"lobby": 3000.0, "audit": 2000.0}  # 83% and 56% of an hour
    outbox.retention = RetentionReport(3600, trimmed=0, oldest_entry_age_seconds=3000, unread_ages_seconds=ages)
    _relay(outbox)
    assert _gauge("galaxy_stream_unread_at_risk") == 1
    outbox.retention = RetentionReport(3600, trimmed=0, oldest_entry_age_seconds=10, unread_ages_seconds={})
    _relay(outbox)
    assert _gauge("galaxy_stream_unread_at_risk") == 0, "the alarm clears once the group caught up"
