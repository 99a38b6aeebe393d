"""What ``galaxy-tasks status --check`` counts as needing attention, from a gathered status."""

from __future__ import annotations

from typing import Any

from galaxy_tasks.cli.status import needs_attention
from galaxy_tasks.config import Settings

SETTINGS = Settings(job_claim_seconds=300, backlog_threshold=500)


def status(**parts: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "long_running": {"gamemaster.health_events_bridge": {"holder": "host:1:ab", "lease_expires_in_ms": 9000}},
        "jobs_in_transition": [],
        "bridges": {"runtime:health_events": {"lag": 0}},
    }
    return {**base, **parts}


def test_a_healthy_status_needs_no_attention() -> None:
    assert needs_attention(status(), SETTINGS) == []


def test_a_singleton_nobody_holds_needs_attention() -> None:
    unheld = status(long_running={"rtmanager.docker_events_listener": {"holder": None, "lease_expires_in_ms": None}})
    assert needs_attention(unheld, SETTINGS) == [
        "long-running rtmanager.docker_events_listener: nobody holds its lease"
    ]


def test_a_job_past_its_claim_bound_needs_attention_and_one_within_it_does_not() -> None:
    rows = [
        {"game_id": "g1", "status": "starting", "job_id": "j1", "claimed_ms_ago": 301_000},
        {"game_id": "g2", "status": "stopping", "job_id": "j2", "claimed_ms_ago": 299_000},
        {"game_id": "g3", "status": "starting", "job_id": None, "claimed_ms_ago": None},
    ]
    assert needs_attention(status(jobs_in_transition=rows), SETTINGS) == [
        "game g1: starting for 301 s, past GALAXY_JOB_CLAIM_SECONDS"
    ]


def test_a_bridge_lagging_past_the_backlog_threshold_needs_attention() -> None:
    lagging = status(bridges={"runtime:health_events": {"lag": 501}, "runtime:start_jobs": {"lag": 500}})
    assert needs_attention(lagging, SETTINGS) == [
        "bridge of runtime:health_events: lag 501 entries, past GALAXY_BACKLOG_THRESHOLD"
    ]
