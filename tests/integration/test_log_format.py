"""Real workers' log lines: ``GALAXY_LOG_FORMAT=json`` gives one JSON object per line, Celery's lines too, each
galaxy_tasks event inside a task with that task's id and name; logfmt names the task too; ``GALAXY_LOG_LEVEL``
sets galaxy_tasks' own level apart from Celery's ``--loglevel``."""

from __future__ import annotations

import json
import signal

import pytest

from galaxy_tasks.testing.cluster import Cluster
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

OOM = {"container_id": "c", "event_type": "container_oom", "occurred_at_ms": "5", "details": "{}"}


def transition_lines(log: str, game_id: str) -> list[str]:
    return [line for line in log.splitlines() if "runtime_status_transitioned" in line and game_id in line]


def test_json_lines_for_every_line_with_the_task_on_each_event_of_a_task(pipeline: Pipeline, cluster: Cluster) -> None:
    pipeline.add_games({"g1": "running"})
    pool = cluster.pool_worker(environment={"GALAXY_LOG_FORMAT": "json"})
    cluster.long_running_worker(environment={"GALAXY_LOG_FORMAT": "json"})
    cluster.beat()
    ids = pipeline.xadd_health([{"game_id": "g1", **OOM}])
    pipeline.wait_settled(ids, {"g1": ids[-1]}, timeout=30)

    lines = pool.log_text().splitlines()
    first_json = next(n for n, line in enumerate(lines) if line.startswith("{"))
    # Celery prints its start-up banner before logging starts (`celery worker --quiet` leaves it out);
    # from the first log line on, every line is one JSON object.
    parsed = [json.loads(line) for line in lines[first_json:] if line.strip()]
    assert any(p.get("message", "").endswith(" ready.") for p in parsed)
    events = [p for p in parsed if p.get("event") == "runtime_status_transitioned" and p.get("game_id") == "g1"]
    assert len(events) == 1
    event = events[0]
    assert event["stream_entry_id"] == ids[0]
    assert event["task"] in ("gamemaster.apply_health_event", "gamemaster.apply_health_events_chunk")
    assert len(event["task_id"]) >= 32
    assert any(p.get("task_id") == event["task_id"] and "succeeded" in p.get("message", "") for p in parsed)


def test_logfmt_lines_name_the_task_and_a_galaxy_log_level_of_warning_hides_the_info_events(
    pipeline: Pipeline, cluster: Cluster
) -> None:
    pipeline.add_games({"g1": "running", "g2": "running"})
    default = cluster.pool_worker("default", queues="gamemaster.health_events")
    cluster.long_running_worker()
    cluster.beat()
    first = pipeline.xadd_health([{"game_id": "g1", **OOM}])
    pipeline.wait_settled(first, {"g1": first[-1]}, timeout=30)
    (line,) = transition_lines(default.log_text(), "g1")
    assert " task_id=" in line
    assert " task=gamemaster.apply_health_event" in line
    default.popen.send_signal(signal.SIGTERM)
    default.popen.wait(timeout=30)

    quiet = cluster.pool_worker("quiet", queues="gamemaster.health_events", environment={"GALAXY_LOG_LEVEL": "WARNING"})
    second = pipeline.xadd_health([{"game_id": "g2", **OOM}])
    pipeline.wait_settled(second, {"g2": second[-1]}, timeout=30)

    assert pipeline.rows(["g2"])["g2"][0] == "engine_unreachable"
    assert transition_lines(quiet.log_text(), "g2") == []
    assert " ready." in quiet.log_text()  # Celery's own INFO lines are still there
